import type { ElementContent, Root } from 'hast'
import { common, createLowlight } from 'lowlight'
import { LINES_PER_PIECE, pieceEnds } from './pieces'

const lowlight = createLowlight(common)

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Highlights `code` as `language` (highlight.js grammars; null when the language is not known)
 * as HTML pieces cut where pieceEnds cuts (only `<span class="hljs-…">` and escaped text), closing
 * the spans open at a cut and reopening them in the next piece, so that each piece can replace
 * the plain text of the same lines on its own.
 */
export function highlightPieces(code: string, language: string): string[] | null {
  if (!lowlight.registered(language)) return null
  const tree: Root = lowlight.highlight(language, code)
  const html: string[] = []
  const open: string[] = []
  let piece = ''
  let lines = 0
  const text = (value: string) => {
    let start = 0
    for (let nl = value.indexOf('\n'); nl >= 0; nl = value.indexOf('\n', start)) {
      piece += escape(value.slice(start, nl + 1))
      start = nl + 1
      if (++lines % LINES_PER_PIECE === 0) {
        html.push(piece + '</span>'.repeat(open.length))
        piece = open.join('')
      }
    }
    piece += escape(value.slice(start))
  }
  const walk = (nodes: ElementContent[]) => {
    for (const node of nodes) {
      if (node.type === 'text') text(node.value)
      else if (node.type === 'element') {
        const classes = node.properties.className
        const tag = `<span class="${Array.isArray(classes) ? classes.join(' ') : ''}">`
        open.push(tag)
        piece += tag
        walk(node.children)
        open.pop()
        piece += '</span>'
      }
    }
  }
  walk(tree.children as ElementContent[])
  // The same count as pieceEnds: a last piece only where text follows the last cut.
  if (pieceEnds(code).length > html.length) html.push(piece)
  return html
}
