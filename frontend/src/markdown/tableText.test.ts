import { lexer, type Tokens } from 'marked'
import { describe, expect, it } from 'vitest'
import type { Element } from 'hast'
import { tableRows, toCsv, toMarkdownTable } from './tableText'

const h = (tagName: string, children: (Element | string)[]): Element => ({
  type: 'element',
  tagName,
  properties: {},
  children: children.map((c) => (typeof c === 'string' ? { type: 'text', value: c } : c)),
})

describe('table text', () => {
  const table = h('table', [
    h('thead', [h('tr', [h('th', ['Model']), h('th', ['Context'])])]),
    h('tbody', [
      h('tr', [h('td', [h('strong', ['Qwen']), ' 3']), h('td', ['131,072'])]),
      h('tr', [h('td', ['a | b']), h('td', ['say "hi"\nthere'])]),
    ]),
  ])

  it('reads the cells row by row, header first, inline markup as its text', () => {
    expect(tableRows(table)).toEqual([
      ['Model', 'Context'],
      ['Qwen 3', '131,072'],
      ['a | b', 'say "hi" there'],
    ])
  })

  it('writes markdown that reads back as the same table', () => {
    const md = toMarkdownTable(tableRows(table))
    expect(md).toBe('| Model | Context |\n| --- | --- |\n| Qwen 3 | 131,072 |\n| a \\| b | say "hi" there |')
    // Ragged rows are padded to the widest.
    expect(toMarkdownTable([['a', 'b'], ['c']])).toBe('| a | b |\n| --- | --- |\n| c |  |')
    const parsed = lexer(md)[0] as Tokens.Table
    expect([parsed.header.map((c) => c.text), ...parsed.rows.map((r) => r.map((c) => c.text.replace(/\\\|/g, '|')))]).toEqual(
      tableRows(table),
    )
  })

  it('writes CSV with quoting where a cell needs it', () => {
    expect(toCsv([['Model', 'Context'], ['Qwen', '131,072'], ['say "hi"', 'x\ny']])).toBe(
      'Model,Context\r\nQwen,"131,072"\r\n"say ""hi""","x\ny"',
    )
  })
})
