import type { Message } from '../types'

export interface Thinking {
  /** The reasoning to show; null when the answer has none. */
  reasoning: string | null
  /** The answer without its reasoning. */
  answer: string
}

const OPEN = '<think>'
const CLOSE = '</think>'

/**
 * Separates reasoning from an answer: the `reasoning` the server streamed apart, or a leading
 * `<think>…</think>` in the text (open to the end while it streams). Some chat templates put
 * `<think>` in the prompt, so a `</think>` alone also ends the reasoning.
 */
export function splitThinking(message: Pick<Message, 'content' | 'reasoning'>): Thinking {
  const { content } = message
  const start = content.trimStart().startsWith(OPEN) ? content.indexOf(OPEN) + OPEN.length : 0
  const end = content.indexOf(CLOSE, start)
  const tagged = start > 0 || end >= 0
  const fromTags = tagged ? content.slice(start, end < 0 ? undefined : end).trim() : ''
  const answer = tagged ? (end < 0 ? '' : content.slice(end + CLOSE.length).trimStart()) : content
  const reasoning = [message.reasoning?.trim(), fromTags].filter(Boolean).join('\n\n')
  return { reasoning: reasoning || (tagged || message.reasoning ? '' : null), answer }
}
