import { Lexer } from 'marked'

/**
 * Splits markdown into top-level blocks (paragraphs, fences, tables, lists…) so that a streaming
 * answer re-renders only its last, growing block. Blank lines stay with the block before them.
 * Blocks are cut from the text itself (the lexer's `raw` trims a trailing partial line), so
 * joined they are always the whole text. Reference-style links and footnotes need the whole
 * document, so such text stays one block.
 */
export function splitBlocks(markdown: string): string[] {
  const text = markdown.replace(/\r\n?/g, '\n')
  const tokens = Lexer.lex(text, { gfm: true })
  if (tokens.some((t) => t.type === 'def')) return [text]
  const ends: number[] = []
  let offset = 0
  for (const token of tokens) {
    offset += token.raw.length
    if (token.type === 'space' && ends.length) ends[ends.length - 1] = offset
    else ends.push(offset)
  }
  if (ends.length === 0) return text ? [text] : []
  ends[ends.length - 1] = text.length
  return ends.map((end, i) => text.slice(i === 0 ? 0 : ends[i - 1], end))
}
