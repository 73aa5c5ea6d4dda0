import type { Element } from 'hast'
import { toText } from 'hast-util-to-text'

/** A rendered GFM table's cells as text, row by row (the header row first). */
export function tableRows(table: Element): string[][] {
  const rows: string[][] = []
  const walk = (el: Element) => {
    for (const child of el.children) {
      if (child.type !== 'element') continue
      if (child.tagName === 'tr') {
        rows.push(
          child.children.flatMap((cell) =>
            cell.type === 'element' && (cell.tagName === 'th' || cell.tagName === 'td')
              ? [toText(cell).replace(/\s+/g, ' ').trim()]
              : [],
          ),
        )
      } else walk(child)
    }
  }
  walk(table)
  return rows
}

/** The rows as a GFM table: the first row is the header; a `|` in a cell is escaped. */
export function toMarkdownTable(rows: string[][]): string {
  const width = Math.max(0, ...rows.map((r) => r.length))
  const line = (cells: string[]) =>
    `| ${Array.from({ length: width }, (_, i) => (cells[i] ?? '').replace(/\|/g, '\\|')).join(' | ')} |`
  const [head = [], ...body] = rows
  return [line(head), `|${' --- |'.repeat(width)}`, ...body.map(line)].join('\n')
}

/** The rows as CSV (RFC 4180): a cell with a comma, quote or line break is quoted. */
export function toCsv(rows: string[][]): string {
  const cell = (c: string) => (/[",\r\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)
  return rows.map((r) => r.map(cell).join(',')).join('\r\n')
}
