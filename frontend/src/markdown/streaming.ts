import remend, { type RemendHandler } from 'remend'
import { normalizeMath } from './math'

const PARTIAL_DELIMITER_ROW = /^\s*\|?[\s:|-]*$/

const startsRow = (line: string | undefined) => line?.trimStart().startsWith('|') ?? false

/**
 * A table whose delimiter row (`|---|---|`) has not fully arrived renders as a table with its
 * header rather than as a line of pipes that turns into a table a moment later. That holds too
 * for a table right under a paragraph (no blank line between), which the parser reads as part of
 * the paragraph until its delimiter row is complete.
 */
const tableHeader: RemendHandler = {
  name: 'tableHeader',
  handle: (block) => {
    // Pipes inside a code fence still arriving are code, not a table.
    if (/^\s*(```|~~~)/m.test(block)) return block
    const lines = block.split('\n')
    let start = lines.length - 1
    // The last line may be a delimiter row on its way (even just the newline after the header).
    if (start > 0 && startsRow(lines[start - 1]) && PARTIAL_DELIMITER_ROW.test(lines[start] ?? '')) start -= 1
    if (!startsRow(lines[start])) return block
    // More rows above: a table already under way (body rows arriving), which parses as it is.
    if (startsRow(lines[start - 1])) return block
    const header = lines[start] ?? ''
    const before = lines.slice(0, start).join('\n')
    // A row of nothing but pipes yet makes no table header: it waits for its first cell.
    if (/^[\s|]*$/.test(header)) return before
    const columns = header.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').length
    const table = `${header}\n|${' --- |'.repeat(columns)}`
    return before.trim() ? `${before}\n\n${table}` : table
  },
}

/** A `\(` or `\[` still waiting for its closer is closed, so the formula shows as it grows. */
function closeTex(block: string): string {
  for (const [open, close] of [['\\[', '\\]'], ['\\(', '\\)']] as const) {
    if (block.lastIndexOf(open) > block.lastIndexOf(close)) return block + close
  }
  return block
}

/**
 * Closes what the growing last block of a streaming answer leaves open (emphasis, links, tables,
 * math). Math delimiters are rewritten first, so remend sees the dollars it knows as math.
 */
export function closeIncomplete(block: string): string {
  return remend(normalizeMath(closeTex(block)), { linkMode: 'text-only', handlers: [tableHeader] })
}
