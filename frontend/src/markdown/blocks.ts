import { Lexer, type Token } from 'marked'

export interface Block {
  source: string
  /** Set when the block is one fenced or indented code block: rendered without a markdown parse. */
  code?: { text: string; language?: string }
}

function codeOf(tokens: Token[]): Block['code'] {
  const [only, ...more] = tokens.filter((t) => t.type !== 'space')
  if (only?.type !== 'code' || more.length > 0) return undefined
  const language = typeof only.lang === 'string' ? only.lang.trim().split(/\s+/)[0] : undefined
  return { text: String(only.text), ...(language ? { language } : {}) }
}

/**
 * Splits markdown into top-level blocks (paragraphs, fences, tables, lists…) so that a streaming
 * answer re-renders only its last, growing block. Blank lines stay with the block before them.
 * Blocks are cut from the text itself (the lexer's `raw` trims a trailing partial line), so
 * joined they are always the whole text. Reference-style links and footnotes need the whole
 * document, so such text stays one block. A code block keeps what the lexer found in it, so
 * a long one is never parsed again as markdown.
 */
export function splitBlocks(markdown: string): Block[] {
  const text = markdown.replace(/\r\n?/g, '\n')
  const tokens = Lexer.lex(text, { gfm: true })
  if (tokens.some((t) => t.type === 'def')) return [{ source: text }]
  const groups: Token[][] = []
  for (const token of tokens) {
    if (token.type === 'space' && groups.length) groups[groups.length - 1]?.push(token)
    else groups.push([token])
  }
  if (groups.length === 0) return text ? [{ source: text }] : []
  let start = 0
  return groups.map((group, i) => {
    const end = i === groups.length - 1 ? text.length : start + group.reduce((n, t) => n + t.raw.length, 0)
    const block: Block = { source: text.slice(start, end) }
    const code = codeOf(group)
    if (code) block.code = code
    start = end
    return block
  })
}
