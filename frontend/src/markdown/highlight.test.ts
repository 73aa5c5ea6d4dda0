import { describe, expect, it } from 'vitest'
import { highlightPieces } from './highlight'
import { LINES_PER_PIECE, pieceEnds } from './pieces'

const textOf = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

describe('highlightPieces', () => {
  it('cuts where pieceEnds cuts, closing spans at the cut and reopening them after it', () => {
    const code = `x = """${'line\n'.repeat(LINES_PER_PIECE)}three"""\ny = 1\n`
    const html = highlightPieces(code, 'python') ?? []
    expect(html).toHaveLength(2)
    expect(pieceEnds(code)).toEqual([code.indexOf('three'), code.length])
    const [first = '', second = ''] = html
    // The string spans the cut: each piece has it open and closed.
    expect(first.startsWith('x = <span class="hljs-string">"""line\n')).toBe(true)
    expect(first.endsWith('line\n</span>')).toBe(true)
    expect(second.startsWith('<span class="hljs-string">three"""</span>')).toBe(true)
    expect(html.map(textOf)).toEqual([code.slice(0, code.indexOf('three')), code.slice(code.indexOf('three'))])
  })

  it('escapes the code, so it can only come back as text', () => {
    const code = '<script>alert(1)</script> & <b>'
    const html = highlightPieces(code, 'xml')?.join('') ?? ''
    expect(html).not.toMatch(/<(script|b)[ >]/)
    expect(textOf(html)).toBe(code)
  })

  it('cuts the same for code that ends on a cut, or is empty', () => {
    const code = 'a\n'.repeat(LINES_PER_PIECE * 2)
    expect(pieceEnds(code)).toEqual([LINES_PER_PIECE * 2, code.length])
    expect(highlightPieces(code, 'python')).toHaveLength(2)
    expect(pieceEnds('')).toEqual([])
    expect(highlightPieces('', 'python')).toEqual([])
  })

  it('leaves a language highlight.js does not know alone', () => {
    expect(highlightPieces('x', 'no-such-language')).toBeNull()
  })
})
