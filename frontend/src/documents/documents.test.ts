import { describe, expect, it } from 'vitest'
import type { Passage } from '../types'
import { chunkText } from './chunk'
import { AttachError, decodeText, fileKind, formatSize, readAttachment } from './extract'
import { citedPassages, documentPrompt, matchedPassages, passageLabel } from './prompt'
import { cosine, topMatches } from './retrieve'
import { estimateTokens } from './tokens'

describe('estimateTokens', () => {
  it('counts about four characters a token, and a CJK character as one', () => {
    expect(estimateTokens('')).toBe(0)
    expect(estimateTokens('a'.repeat(400))).toBe(100)
    expect(estimateTokens('你好世界')).toBe(4)
    expect(estimateTokens('你好 world')).toBe(2 + 2)
  })
})

describe('chunkText', () => {
  const paragraph = (i: number) => `Paragraph ${i}. ` + 'The quick brown fox jumps over the lazy dog. '.repeat(5)

  it('keeps a short text whole', () => {
    expect(chunkText('One short note.', 100)).toEqual(['One short note.'])
  })

  it('packs whole paragraphs up to the limit and never cuts one that fits', () => {
    const text = Array.from({ length: 12 }, (_, i) => paragraph(i)).join('\n\n')
    const chunks = chunkText(text, 150)
    expect(chunks.length).toBeGreaterThan(2)
    for (const c of chunks) expect(estimateTokens(c)).toBeLessThanOrEqual(150)
    // Every paragraph is inside exactly one chunk, in order.
    const joined = chunks.join('\n')
    for (let i = 0; i < 12; i++) expect(joined).toContain(paragraph(i).trim())
    expect(chunks.flatMap((c) => [...c.matchAll(/Paragraph (\d+)/g)].map((m) => Number(m[1])))).toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    )
  })

  it('cuts a too-long paragraph at sentences, and text without boundaries by length (CJK too)', () => {
    const long = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} is here.`).join(' ')
    const chunks = chunkText(long, 50)
    for (const c of chunks) expect(estimateTokens(c)).toBeLessThanOrEqual(50)
    expect(chunks[0]?.startsWith('Sentence number 0 is here.')).toBe(true)
    expect(chunks.join(' ').replace(/\s+/g, ' ')).toBe(long)

    const cjk = '汉'.repeat(1000)
    const pieces = chunkText(cjk, 120)
    for (const c of pieces) expect(estimateTokens(c)).toBeLessThanOrEqual(120)
    expect(pieces.join('')).toBe(cjk)

    const minified = 'x'.repeat(5000)
    expect(chunkText(minified, 100).join('')).toBe(minified)
  })
})

describe('retrieval ranking', () => {
  it('measures cosine similarity regardless of length', () => {
    expect(cosine([1, 0], [2, 0])).toBeCloseTo(1)
    expect(cosine([1, 0], [0, 3])).toBeCloseTo(0)
    expect(cosine([1, 1], [-1, -1])).toBeCloseTo(-1)
    expect(cosine([0, 0], [1, 1])).toBe(0)
  })

  it('returns the k closest passages best first, the earlier one winning a tie', () => {
    const query = [1, 0, 0]
    const vectors = [
      [0, 1, 0], // 0: orthogonal
      [0.9, 0.1, 0], // 1: close
      [1, 0, 0], // 2: identical
      [0.9, 0.1, 0], // 3: same as 1
      [-1, 0, 0], // 4: opposite
    ]
    expect(topMatches(query, vectors, 3)).toEqual([2, 1, 3])
    expect(topMatches(query, vectors, 10)).toEqual([2, 1, 3, 0, 4])
    expect(topMatches(query, [], 3)).toEqual([])
  })
})

describe('citations', () => {
  const passages: Passage[] = [
    { n: 1, file: 'notes.md', index: 0, total: 1, text: 'Whole small file.' },
    { n: 2, file: 'report.pdf', index: 4, total: 12, text: 'The budget was 42 million.' },
    { n: 3, file: 'report.pdf', index: 7, total: 12, text: 'Approved in March.' },
  ]

  it('numbers the passages in the prompt with their file and place, before the question', () => {
    const prompt = documentPrompt('What was the budget?', passages)
    expect(prompt).toContain('[1] notes.md\n"""\nWhole small file.\n"""')
    expect(prompt).toContain('[2] report.pdf, passage 5 of 12\n"""\nThe budget was 42 million.\n"""')
    expect(prompt.indexOf('[3]')).toBeLessThan(prompt.indexOf('Question: What was the budget?'))
    expect(documentPrompt('No files', [])).toBe('No files')
    expect(passageLabel(passages[2] as Passage)).toBe('report.pdf, passage 8 of 12')
  })

  it('maps [n], [n, m] and [n][m] in an answer to the passages, once each, in order of first citation', () => {
    expect(citedPassages('It was 42 million [2], approved in March [3][2].', passages).map((p) => p.n)).toEqual([2, 3])
    expect(citedPassages('See [3, 1].', passages).map((p) => p.n)).toEqual([3, 1])
    // Numbers that name no passage, and bracketed text that is not a citation, are ignored.
    expect(citedPassages('Not [9], not [a], not a[]', passages)).toEqual([])
    expect(citedPassages('No citations at all.', passages)).toEqual([])
  })
})

describe('passages matched by wording (an answer without citations)', () => {
  const passages: Passage[] = [
    { n: 1, file: 'a.pdf', index: 0, total: 1, text: 'The Zephyr project budget is 42 million euros.' },
    { n: 2, file: 'notes.txt', index: 29, total: 56, text: 'The lighthouse on Koral Island was built in 1872 by the engineer Mara Vell.' },
    { n: 3, file: 'notes.txt', index: 30, total: 56, text: 'Its lamp can be seen forty kilometres out at sea.' },
    { n: 4, file: 'zh.md', index: 0, total: 1, text: '灯塔建于一八七二年，由工程师设计。' },
  ]

  it('finds the passages an answer repeats runs of words from, most shared first', () => {
    const answer = 'The lighthouse on Koral Island was built by the British in 1872 by the engineer Mara Vell. Its lamp can be seen far.'
    expect(matchedPassages(answer, passages).map((p) => p.n)).toEqual([2, 3])
  })

  it('ignores case and punctuation, reads CJK by character, and needs more than one shared run', () => {
    expect(matchedPassages('the ZEPHYR project, budget is 42 million!', passages).map((p) => p.n)).toEqual([1])
    expect(matchedPassages('这座灯塔建于一八七二年。', passages).map((p) => p.n)).toEqual([4])
    expect(matchedPassages('The lighthouse on an island.', passages)).toEqual([])
  })
})

describe('reading files', () => {
  it('tells PDFs, images and text apart by type, then by name', () => {
    expect(fileKind('a.pdf', '')).toBe('pdf')
    expect(fileKind('scan', 'application/pdf')).toBe('pdf')
    expect(fileKind('photo.png', 'image/png')).toBe('image')
    expect(fileKind('main.rs', '')).toBe('text')
    expect(fileKind('README.md', 'text/markdown')).toBe('text')
  })

  it('decodes UTF-8 text and refuses binary', () => {
    expect(decodeText(new TextEncoder().encode('\uFEFFhello 世界'))).toBe('hello 世界')
    expect(decodeText(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00]))).toBeNull()
    expect(decodeText(new Uint8Array([0xff, 0xfe, 0x41]))).toBeNull()
  })

  it('refuses an image for a text-only model, saying which; reads one for a model with vision', async () => {
    const png = new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], 'photo.png', { type: 'image/png' })
    const refused = await readAttachment(png, 'i1', { name: 'SmolLM2', imagesOk: false }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(AttachError)
    expect(refused).toMatchObject({ reason: 'attachImage', vars: { name: 'photo.png', model: 'SmolLM2' } })
    const image = await readAttachment(png, 'i1', { name: 'llava', imagesOk: true })
    expect(image).toEqual({ id: 'i1', name: 'photo.png', size: 4, kind: 'image', text: '', dataUrl: 'data:image/png;base64,iVBORw==' })
    const text = await readAttachment(new File(['# Hi'], 'a.md'), 't1', { name: 'x', imagesOk: false })
    expect(text).toMatchObject({ kind: 'text', text: '# Hi', size: 4 })
    const empty = await readAttachment(new File(['  \n'], 'blank.txt'), 'e', { name: 'x', imagesOk: false }).catch((e: unknown) => e)
    expect(empty).toMatchObject({ reason: 'attachEmpty' })
  })

  it('formats sizes', () => {
    expect(formatSize(512)).toBe('512 B')
    expect(formatSize(2048)).toBe('2.0 KB')
    expect(formatSize(300 * 1024)).toBe('300 KB')
    expect(formatSize(3 * 1024 * 1024)).toBe('3.0 MB')
  })
})
