import { describe, expect, it } from 'vitest'
import { splitBlocks } from './blocks'

const doc = [
  '# Title',
  '',
  'A paragraph with **bold** text.',
  '',
  '```python',
  'def f():',
  '',
  '    return 1',
  '```',
  '',
  '| a | b |',
  '|---|---|',
  '| 1 | 2 |',
  '',
  '- one',
  '- two',
  '',
  'Last paragraph.',
].join('\n')

const sources = (text: string) => splitBlocks(text).map((b) => b.source)

describe('splitBlocks', () => {
  it('splits top-level blocks and loses no text', () => {
    const blocks = sources(doc)
    expect(blocks.join('')).toBe(doc)
    expect(blocks).toHaveLength(6)
    // A blank line inside a code fence does not split it.
    expect(blocks[2]).toContain('def f():\n\n    return 1')
  })

  it('hands over a code block as its text and language, and only a block that is all code', () => {
    const blocks = splitBlocks(doc)
    expect(blocks[2]?.code).toEqual({ text: 'def f():\n\n    return 1', language: 'python' })
    expect(blocks.filter((b) => b.code)).toHaveLength(1)
    expect(splitBlocks('```js {.x}\nlet a\n```')[0]?.code).toEqual({ text: 'let a', language: 'js' })
    expect(splitBlocks('```\nplain\n```')[0]?.code).toEqual({ text: 'plain' })
    // Still arriving: the fence is open to the end.
    expect(splitBlocks('Hi\n\n```py\nx = 1\ny')[1]?.code).toEqual({ text: 'x = 1\ny', language: 'py' })
  })

  it('keeps finished blocks identical while the text streams in, so they are not re-rendered', () => {
    const final = sources(doc)
    for (let end = 1; end <= doc.length; end += 1) {
      const blocks = sources(doc.slice(0, end))
      expect(blocks.join('')).toBe(doc.slice(0, end))
      // Every block before the growing last one is already final.
      for (let i = 0; i < blocks.length - 1; i++) expect(blocks[i]).toBe(final[i])
    }
  })

  it('treats an unterminated code fence as one block to the end', () => {
    const partial = 'Intro\n\n```js\nconst a = 1\n\nconst b = 2'
    const blocks = sources(partial)
    expect(blocks).toHaveLength(2)
    expect(blocks[1]).toBe('```js\nconst a = 1\n\nconst b = 2')
  })

  it('keeps text with reference-style links or footnotes whole, since they span blocks', () => {
    const text = 'See [the docs][1].\n\nMore.\n\n[1]: https://example.com'
    expect(sources(text)).toEqual([text])
  })
})
