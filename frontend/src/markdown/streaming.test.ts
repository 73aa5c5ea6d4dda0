import { Lexer } from 'marked'
import { describe, expect, it } from 'vitest'
import { splitBlocks } from './blocks'
import { closeIncomplete } from './streaming'

/** What the growing last block renders from, at every length of `text`. */
const stages = (text: string) =>
  Array.from({ length: text.length }, (_, i) => closeIncomplete(splitBlocks(text.slice(0, i + 1)).at(-1)?.source ?? ''))

describe('a streamed table', () => {
  it('is a table (header first) at every stage, never a paragraph of pipes, also right under a paragraph', () => {
    for (const text of [
      '| Planet | Size |\n| --- | --- |\n| Mars | small |\n',
      'Here are planets:\n| Planet | Size |\n| :-- | --: |\n| Mars | small |\n',
      'Here are planets:\n\n| Planet | Size |\n|---|---|\n| Mars | small |\n',
    ]) {
      for (const source of stages(text)) {
        if (!source.includes('|')) continue
        // Once a pipe has arrived the parser sees a table, and no paragraph holds a pipe.
        const tokens = Lexer.lex(source, { gfm: true })
        expect(tokens.map((t) => t.type), JSON.stringify(source)).toContain('table')
        for (const t of tokens) if (t.type === 'paragraph') expect(t.raw, JSON.stringify(source)).not.toContain('|')
      }
    }
  })

  it('leaves pipes in a code fence, and rows of a table under way, alone', () => {
    expect(closeIncomplete('```\n| a | b')).not.toContain('---')
    const body = '| a | b |\n| --- | --- |\n| 1 | 2 |\n|'
    expect(closeIncomplete(body)).toBe(body)
  })
})
