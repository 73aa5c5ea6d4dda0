import remend, { type RemendHandler } from 'remend'
import { normalizeMath } from './math'

const PARTIAL_DELIMITER_ROW = /^\s*\|?[\s:|-]*$/

/**
 * A table whose delimiter row (`|---|---|`) has not fully arrived renders as a table with its
 * header rather than as a line of pipes that turns into a table a moment later.
 */
const tableHeader: RemendHandler = {
  name: 'tableHeader',
  handle: (block) => {
    const [header, delimiter, ...rest] = block.split('\n')
    if (!header?.trimStart().startsWith('|') || rest.length > 0) return block
    if (delimiter !== undefined && !PARTIAL_DELIMITER_ROW.test(delimiter)) return block
    const columns = header.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').length
    return `${header}\n|${' --- |'.repeat(columns)}`
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
