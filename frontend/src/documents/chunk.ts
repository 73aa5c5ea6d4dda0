import { estimateTokens } from './tokens'

/**
 * Splits a document into passages of at most `maxTokens` (estimated) each, cut at paragraph,
 * then line, then sentence boundaries, and only mid-sentence where a sentence alone is too long.
 * Consecutive pieces are packed together up to the limit, so passages are about the same size.
 * The limit keeps every passage inside the embedding model's input (512 tokens for MiniLM).
 */
export function chunkText(text: string, maxTokens = 300): string[] {
  const pieces = split(text.replace(/\r\n?/g, '\n').trim(), maxTokens, 0)
  const chunks: string[] = []
  let current = ''
  for (const piece of pieces) {
    const joined = current ? `${current}\n${piece}` : piece
    if (current && estimateTokens(joined) > maxTokens) {
      chunks.push(current)
      current = piece
    } else current = joined
  }
  if (current) chunks.push(current)
  return chunks
}

const SEPARATORS = [/\n\s*\n/, /\n/, /(?<=[.!?。！？；;])\s*/]

function split(text: string, maxTokens: number, level: number): string[] {
  if (!text) return []
  if (estimateTokens(text) <= maxTokens) return [text]
  const separator = SEPARATORS[level]
  if (!separator) return hardSplit(text, maxTokens)
  const parts = text.split(separator).map((p) => p.trim()).filter(Boolean)
  if (parts.length === 1) return split(text, maxTokens, level + 1)
  return parts.flatMap((p) => split(p, maxTokens, level + 1))
}

/** A run of text with no boundary to cut at (a minified file, a long CJK sentence). */
function hardSplit(text: string, maxTokens: number): string[] {
  const out: string[] = []
  let start = 0
  while (start < text.length) {
    // Halve the window until it fits: CJK text packs four times the tokens per character.
    let end = Math.min(text.length, start + maxTokens * 4)
    while (end - start > 1 && estimateTokens(text.slice(start, end)) > maxTokens) end = start + Math.floor((end - start) / 2)
    out.push(text.slice(start, end))
    start = end
  }
  return out
}
