import { flushSync } from 'react-dom'
import { errorFromException, streamChat, type ChatRequestMessage, type DeltaPart, type StreamResult } from '../api/client'
import { documentPrompt } from '../documents/prompt'
import { estimateTokens } from '../documents/tokens'
import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { apiConfig } from '../store/settings'
import type { ChatError, Conversation, Message } from '../types'
import { streamClock } from './metrics'
import { pickModel } from './model'
import { preparePassages } from './passages'
import { splitThinking } from './thinking'
import { renderThrottle } from './throttle'

/** Open requests by conversation: one answer at a time per conversation. */
const running = new Map<string, AbortController>()

export function isGenerating(conv: Conversation | undefined): boolean {
  return conv?.messages.at(-1)?.status === 'streaming'
}

/**
 * Failed answers (nothing arrived) are left out; stopped and cut-off ones are part of the chat.
 * Earlier answers go back without their reasoning, as reasoning models expect. A user message
 * goes with the passages of its files, and with its images as image parts.
 */
export function requestMessages(conv: Conversation): ChatRequestMessage[] {
  const messages: ChatRequestMessage[] = []
  if (conv.systemPrompt.trim()) messages.push({ role: 'system', content: conv.systemPrompt })
  for (const m of conv.messages) {
    const content =
      m.role === 'assistant' ? splitThinking(m).answer : m.passages ? documentPrompt(m.content, m.passages) : m.content
    if (m.role === 'assistant' && !content) continue
    const images = m.role === 'user' ? (m.attachments ?? []).flatMap((a) => (a.dataUrl ? [a.dataUrl] : [])) : []
    messages.push({
      role: m.role,
      content: images.length
        ? [{ type: 'text', text: content }, ...images.map((url) => ({ type: 'image_url' as const, image_url: { url } }))]
        : content,
    })
  }
  return messages
}

/** A request message's text (an image part counts for nothing in the estimate of its size). */
function textOf(m: ChatRequestMessage): string {
  return typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n')
}

/** How a stream that ran to its end went: without [DONE] or a finish reason it was cut off. */
export function outcome(result: StreamResult, hasText: boolean): Partial<Message> {
  const finished = result.sawDone || result.finishReason !== null
  const error: ChatError | null =
    result.error ?? (finished ? null : { kind: 'interrupted', message: 'The connection closed before the answer finished' })
  return {
    status: error ? (hasText ? 'interrupted' : 'error') : 'done',
    ...(error ? { error } : {}),
    finishReason: result.finishReason,
  }
}

/** Streams a new assistant answer to the conversation's current messages into the store. */
export async function generate(convId: string): Promise<void> {
  const conv = chatStore.getState().conversations[convId]
  if (!conv || running.has(convId)) return
  const controller = new AbortController()
  running.set(convId, controller)
  const messageId = newId()
  chatStore.getState().addMessage(convId, {
    id: messageId,
    role: 'assistant',
    content: '',
    createdAt: Date.now(),
    status: 'streaming',
  })

  let content = ''
  let reasoning = ''
  const clock = streamClock()
  // While streaming, the metrics (from the chunks counted so far) show the live tokens/s.
  const text = () => ({ content, ...(reasoning ? { reasoning } : {}), metrics: clock.metrics(null) })
  // Rendered now rather than in a later microtask, so the throttle measures the real cost.
  const throttle = renderThrottle(() => flushSync(() => chatStore.getState().updateMessage(convId, messageId, text())))
  const onDelta = (delta: string, part: DeltaPart) => {
    clock.chunk()
    if (part === 'reasoning') reasoning += delta
    else content += delta
    throttle.request()
  }

  let final: Partial<Message>
  let model = conv.model
  try {
    model = await pickModel(conv)
    const sources = await preparePassages(convId, controller.signal, () =>
      chatStore.getState().updateMessage(convId, messageId, { searching: true }),
    )
    const messages = requestMessages(chatStore.getState().conversations[convId] ?? conv)
    // The last message is this (still empty) answer's, which requestMessages leaves out.
    const promptTokensEstimate = estimateTokens(messages.map(textOf).join('\n'))
    chatStore
      .getState()
      .updateMessage(convId, messageId, { promptTokensEstimate, searching: undefined, ...(sources.length ? { sources } : {}) })
    clock.start()
    const request = { model, messages, params: conv.params, conversationId: conv.id }
    const result = await streamChat(apiConfig(), request, onDelta, controller.signal)
    final = { ...outcome(result, content !== '' || reasoning !== ''), metrics: clock.metrics(result) }
  } catch (e) {
    final = controller.signal.aborted
      ? { status: 'stopped', metrics: clock.metrics(null) }
      : { status: content || reasoning ? 'interrupted' : 'error', error: errorFromException(e) }
  } finally {
    running.delete(convId)
    throttle.cancel()
  }
  // The live metrics give way to the final ones (none after an error); the wait is over.
  chatStore
    .getState()
    .updateMessage(convId, messageId, {
    ...text(),
    metrics: undefined,
    promptTokensEstimate: undefined,
    searching: undefined,
    ...final,
    model,
  })
}

export function stop(convId: string): void {
  running.get(convId)?.abort()
}
