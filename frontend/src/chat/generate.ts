import { flushSync } from 'react-dom'
import { errorFromException, streamChat, type ChatRequestMessage, type StreamResult } from '../api/client'
import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { apiConfig } from '../store/settings'
import type { ChatError, Conversation, Message } from '../types'
import { streamClock } from './metrics'
import { pickModel } from './model'
import { renderThrottle } from './throttle'

/** Open requests by conversation: one answer at a time per conversation. */
const running = new Map<string, AbortController>()

export function isGenerating(conv: Conversation | undefined): boolean {
  return conv?.messages.at(-1)?.status === 'streaming'
}

/** Failed answers (nothing arrived) are left out; stopped and cut-off ones are part of the chat. */
export function requestMessages(conv: Conversation): ChatRequestMessage[] {
  const messages: ChatRequestMessage[] = []
  if (conv.systemPrompt.trim()) messages.push({ role: 'system', content: conv.systemPrompt })
  for (const m of conv.messages) {
    if (m.role === 'assistant' && !m.content) continue
    messages.push({ role: m.role, content: m.content })
  }
  return messages
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
  const clock = streamClock()
  // Rendered now rather than in a later microtask, so the throttle measures the real cost.
  const throttle = renderThrottle(() => flushSync(() => chatStore.getState().updateMessage(convId, messageId, { content })))
  const onDelta = (text: string) => {
    clock.chunk()
    content += text
    throttle.request()
  }

  let final: Partial<Message>
  let model = conv.model
  try {
    model = await pickModel(conv)
    clock.start()
    const request = { model, messages: requestMessages(conv), params: conv.params }
    const result = await streamChat(apiConfig(), request, onDelta, controller.signal)
    final = { ...outcome(result, content !== ''), metrics: clock.metrics(result) }
  } catch (e) {
    final = controller.signal.aborted
      ? { status: 'stopped', metrics: clock.metrics(null) }
      : { status: content ? 'interrupted' : 'error', error: errorFromException(e) }
  } finally {
    running.delete(convId)
    throttle.cancel()
  }
  chatStore.getState().updateMessage(convId, messageId, { ...final, content, model })
}

export function stop(convId: string): void {
  running.get(convId)?.abort()
}
