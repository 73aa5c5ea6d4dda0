import { flushSync } from 'react-dom'
import {
  ApiError,
  errorFromException,
  streamChat,
  type ChatRequestMessage,
  type ModelInfo,
  type StreamResult,
} from '../api/client'
import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { modelsStore, refreshModels } from '../store/models'
import { apiConfig, settingsStore } from '../store/settings'
import type { ChatError, Conversation, Message, Metrics } from '../types'

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

/**
 * The model an answer uses: the conversation's, else the last one chosen, as long as the server
 * lists it; else the server's first. Before the list has loaded, a named model is tried as is.
 */
export function resolveModel(preferred: string[], listed: ModelInfo[]): string {
  const named = preferred.filter(Boolean)
  if (listed.length === 0) return named[0] ?? ''
  return named.find((id) => listed.some((m) => m.id === id)) ?? listed[0]?.id ?? ''
}

async function pickModel(conv: Conversation): Promise<string> {
  const { lastModel } = settingsStore.getState()
  let listed = modelsStore.getState().models
  if (listed.length === 0 && !conv.model && !lastModel) listed = await refreshModels()
  const id = resolveModel([conv.model, lastModel], listed)
  if (!id) throw new ApiError({ kind: 'server', message: 'The server lists no chat model' })
  if (id !== conv.model) chatStore.getState().patch(conv.id, { model: id })
  return id
}

export function measure(
  startedAt: number,
  firstTokenAt: number | null,
  endedAt: number,
  chunks: number,
  result: StreamResult | null,
): Metrics {
  const tokens = result?.usage?.completion_tokens ?? chunks
  const genSeconds = firstTokenAt === null ? 0 : (endedAt - firstTokenAt) / 1000
  return {
    completionTokens: tokens,
    approximate: !result?.usage,
    ...(result?.usage ? { promptTokens: result.usage.prompt_tokens } : {}),
    ttftMs: firstTokenAt === null ? null : firstTokenAt - startedAt,
    // The first token ends the wait; the rate counts the ones generated after it.
    tokensPerSecond: tokens > 1 && genSeconds > 0 ? (tokens - 1) / genSeconds : null,
    durationMs: endedAt - startedAt,
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
  let chunks = 0
  let startedAt = performance.now()
  let firstTokenAt: number | null = null
  let flushPending = false
  let nextFlushAt = 0
  const flush = () => {
    if (!flushPending) return
    flushPending = false
    const start = performance.now()
    // Rendered now rather than in a later microtask, so the cost below is the real cost.
    flushSync(() => chatStore.getState().updateMessage(convId, messageId, { content }))
    const end = performance.now()
    // The next update waits at least twice as long as this one took: however expensive the
    // growing block gets, two thirds of the main thread stay free for scrolling and typing.
    nextFlushAt = end + 2 * (end - start)
  }
  const onDelta = (text: string) => {
    firstTokenAt ??= performance.now()
    content += text
    chunks += 1
    if (flushPending) return
    flushPending = true
    const wait = nextFlushAt - performance.now()
    if (wait > 0) {
      setTimeout(flush, wait)
      return
    }
    // At most one update per frame, however many tokens arrived. requestAnimationFrame does not
    // run in a hidden tab; the timer then keeps the text (and its saved copy) current.
    requestAnimationFrame(flush)
    setTimeout(flush, 250)
  }

  let final: Partial<Message>
  let model = conv.model
  try {
    model = await pickModel(conv)
    settingsStore.getState().update({ lastModel: model })
    startedAt = performance.now()
    const result = await streamChat(
      apiConfig(),
      { model, messages: requestMessages(conv), params: conv.params, conversationId: conv.id },
      onDelta,
      controller.signal,
    )
    const finished = result.sawDone || result.finishReason !== null
    const error: ChatError | null =
      result.error ??
      (finished ? null : { kind: 'interrupted', message: 'The connection closed before the answer finished' })
    final = {
      status: error ? (content ? 'interrupted' : 'error') : 'done',
      ...(error ? { error } : {}),
      finishReason: result.finishReason,
      metrics: measure(startedAt, firstTokenAt, performance.now(), chunks, result),
    }
  } catch (e) {
    if (controller.signal.aborted) {
      final = { status: 'stopped', metrics: measure(startedAt, firstTokenAt, performance.now(), chunks, null) }
    } else {
      final = { status: content ? 'interrupted' : 'error', error: errorFromException(e) }
    }
  } finally {
    running.delete(convId)
    // The final update below carries the text; a frame or timer still queued has nothing to do.
    flushPending = false
  }
  chatStore.getState().updateMessage(convId, messageId, { ...final, content, model })
}

export function stop(convId: string): void {
  running.get(convId)?.abort()
}

export function sendMessage(convId: string | null, text: string): string {
  const chat = chatStore.getState()
  const { defaultParams, lastModel } = settingsStore.getState()
  const id = convId ?? chat.create({ params: defaultParams, model: lastModel })
  chat.addMessage(id, { id: newId(), role: 'user', content: text, createdAt: Date.now() })
  void generate(id)
  return id
}

/** Replaces the last answer (also the retry after an error). */
export function regenerate(convId: string): void {
  const last = chatStore.getState().conversations[convId]?.messages.at(-1)
  if (!last || last.status === 'streaming') return
  if (last.role === 'assistant') chatStore.getState().truncateFrom(convId, last.id)
  void generate(convId)
}

/** The edited message replaces the original and everything after it. */
export function editAndResend(convId: string, messageId: string, text: string): void {
  const chat = chatStore.getState()
  if (isGenerating(chat.conversations[convId])) return
  chat.truncateFrom(convId, messageId)
  sendMessage(convId, text)
}

export function removeConversation(convId: string): void {
  stop(convId)
  chatStore.getState().remove(convId)
}
