import type { Passage } from '../types'

/** Where a passage comes from, as the prompt and the citations both name it. */
export function passageLabel(p: Passage): string {
  return p.total === 1 ? p.file : `${p.file}, passage ${p.index + 1} of ${p.total}`
}

/** The user's message with the passages it was given, numbered for the model to cite. */
export function documentPrompt(question: string, passages: readonly Passage[]): string {
  if (passages.length === 0) return question
  const blocks = passages.map((p) => `[${p.n}] ${passageLabel(p)}\n"""\n${p.text}\n"""`)
  return [
    'Answer using the documents below. After each fact you take from them, cite its passage number in brackets, like [1].',
    '',
    blocks.join('\n\n'),
    '',
    `Question: ${question}`,
  ].join('\n')
}

/** The passages an answer cites as [n] (also [1, 2] and [1][2]), in the order first cited. */
export function citedPassages(answer: string, passages: readonly Passage[]): Passage[] {
  const byNumber = new Map(passages.map((p) => [p.n, p]))
  const cited: Passage[] = []
  for (const group of answer.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)) {
    for (const n of (group[1] ?? '').split(',')) {
      const p = byNumber.get(Number(n.trim()))
      if (p && !cited.includes(p)) cited.push(p)
    }
  }
  return cited
}

// Words of Latin-script text, and single CJK characters (which carry a word's meaning each).
const TOKENS = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]|[\p{L}\p{N}]+/gu

function trigrams(text: string): Set<string> {
  const words = text.toLowerCase().match(TOKENS) ?? []
  const grams = new Set<string>()
  for (let i = 0; i + 2 < words.length; i++) grams.add(`${words[i]} ${words[i + 1]} ${words[i + 2]}`)
  return grams
}

/** Shared runs of three words that make a passage count as the source of an answer. */
export const MIN_SHARED_TRIGRAMS = 2

/**
 * For an answer that cites nothing (small models rarely do): the passages its wording comes
 * from, by the runs of three words it shares with each, most shared first.
 */
export function matchedPassages(answer: string, passages: readonly Passage[]): Passage[] {
  const said = trigrams(answer)
  return passages
    .map((p) => {
      let shared = 0
      for (const g of trigrams(p.text)) if (said.has(g)) shared++
      return { p, shared }
    })
    .filter((m) => m.shared >= MIN_SHARED_TRIGRAMS)
    .sort((a, b) => b.shared - a.shared || a.p.n - b.p.n)
    .map((m) => m.p)
}
