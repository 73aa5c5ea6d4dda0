import { flushSync } from 'react-dom'
import {
  errorFromException,
  readChatStream,
  resumeChat,
  stopChat,
  streamChat,
  type ChatRequestMessage,
  type DeltaPart,
  type StreamResult,
  type ToolCallDelta,
} from '../api/client'
import { documentPrompt } from '../documents/prompt'
import { estimateTokens } from '../documents/tokens'
import { newId } from '../lib/id'
import { answerElsewhere, whenNoAnswer, withAnswerLock } from '../store/answerLock'
import { pathTo } from '../store/branches'
import { chatStore } from '../store/conversations'
import { followLoad, modelsStore } from '../store/models'
import { apiBaseHref, apiConfig } from '../store/settings'
import type { ChatError, Conversation, Message, Variant } from '../types'
import { addMetrics, streamClock } from './metrics'
import { offersContinue, pickModel } from './model'
import { preparePassages } from './passages'
import { splitThinking } from './thinking'
import { renderThrottle } from './throttle'
import { addToolCallDelta, assistantTurn, toolCallList, type PendingCalls } from './toolCalls'

/** This tab's open requests by conversation: one answer at a time per conversation (answerLock: in all tabs). */
const running = new Map<string, AbortController>()

/** Stop pressed in a tab that shows another tab's answer: the tab writing it stops it. */
let stopChannel: BroadcastChannel | null | undefined
function stops(): BroadcastChannel | null {
  if (stopChannel === undefined) {
    stopChannel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('localchat.stop')
    stopChannel?.addEventListener('message', (e: MessageEvent<string>) => running.get(e.data)?.abort())
  }
  return stopChannel
}

/**
 * Runs `start` (which adds the messages and streams the answer) unless another tab, or this
 * one, is answering in the conversation: then says so (answerElsewhere, until that
 * answer ends) and resolves false; true once it has started.
 */
async function exclusive(convId: string, start: () => Promise<void>): Promise<boolean> {
  if (running.has(convId)) return false
  stops()
  const started = await withAnswerLock(convId, start)
  const clear = () => {
    if (answerElsewhere.getState().convId === convId) answerElsewhere.setState({ convId: null })
  }
  if (started) clear()
  else {
    answerElsewhere.setState({ convId })
    whenNoAnswer(convId, clear)
  }
  return started
}

export function isGenerating(conv: Conversation | undefined): boolean {
  return conv?.messages.some((m) => m.status === 'streaming') ?? false
}

/**
 * The branch from the first message to `upTo`. Failed answers (nothing arrived) are left out;
 * stopped and cut-off ones are part of the chat. Earlier answers go back without their
 * reasoning, as reasoning models expect, and with their tool calls (toolCalls.ts, assistantTurn).
 * A user message goes with the passages of its files, and with its images as image parts.
 */
export function requestMessages(conv: Conversation, upTo: string): ChatRequestMessage[] {
  const messages: ChatRequestMessage[] = []
  if (conv.systemPrompt.trim()) messages.push({ role: 'system', content: conv.systemPrompt })
  for (const m of pathTo(conv.messages, upTo)) {
    if (m.role === 'assistant') {
      messages.push(...assistantTurn(m.id, splitThinking(m).answer, m.toolCalls))
      continue
    }
    const content = m.passages ? documentPrompt(m.content, m.passages) : m.content
    const images = (m.attachments ?? []).flatMap((a) => (a.dataUrl ? [a.dataUrl] : []))
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
  if (m.content === null) return ''
  return typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n')
}

/**
 * How a stream that ran to its end went: without [DONE] or a finish reason it was cut off.
 * `hasText`: something arrived (text, reasoning or a tool call). `finish_reason: "tool_calls"`
 * is an answer that ended normally.
 */
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

/**
 * Streams a new assistant answer to the branch ending at `parentId` into the store, after
 * `prepare` (which may add that message). Resolves once it has started, false when it could not
 * (another tab is answering in this conversation: nothing is added).
 */
export function generate(convId: string, parentId: string, prepare?: () => void): Promise<boolean> {
  return exclusive(convId, async () => {
    prepare?.()
    const conv = chatStore.getState().conversations[convId]
    if (!conv) return
    const messageId = newId()
    chatStore.getState().addMessage(convId, {
      id: messageId,
      role: 'assistant',
      content: '',
      createdAt: Date.now(),
      status: 'streaming',
      parentId,
    })
    await streamInto(conv, messageId, parentId)
  })
}

/**
 * Streams several answers to the branch ending at `parentId` at once, as versions of one message
 * (side by side: compare.ts): `columns` names each new answer and what it asks differently from
 * the conversation. They share one Stop; an error in one leaves the others running. Resolves
 * like generate.
 */
export function generateSiblings(
  convId: string,
  parentId: string,
  columns: { id: string; variant: Variant }[],
  prepare?: () => void,
): Promise<boolean> {
  return exclusive(convId, async () => {
    prepare?.()
    const conv = chatStore.getState().conversations[convId]
    if (!conv) return
    for (const { id, variant } of columns) {
      chatStore.getState().addMessage(convId, {
        id,
        role: 'assistant',
        content: '',
        createdAt: Date.now(),
        status: 'streaming',
        parentId,
        variant,
        ...(variant.model ? { model: variant.model } : {}),
      })
    }
    const controller = new AbortController()
    running.set(convId, controller)
    try {
      await Promise.all(columns.map(({ id, variant }) => streamInto(conv, id, parentId, undefined, { variant, controller })))
    } finally {
      running.delete(convId)
    }
  })
}

/**
 * Carries on an answer the length limit cut, in the same message, with the server's
 * `continue_final_message` (see model.ts, offersContinue). False when the server does not offer
 * it, or the answer was cut while still reasoning (no answer text to carry on) or has tool calls
 * (the server cannot carry on a message whose calls were answered): the caller then asks in a
 * new turn.
 */
export async function continueInPlace(convId: string, messageId: string): Promise<boolean> {
  const conv = chatStore.getState().conversations[convId]
  const message = conv?.messages.find((m) => m.id === messageId)
  if (!conv || !message || running.has(convId)) return true
  if (!splitThinking(message).answer || message.toolCalls?.length || !(await offersContinue(conv))) return false
  await exclusive(convId, async () => {
    chatStore.getState().updateMessage(convId, messageId, { status: 'streaming', finishReason: null, error: undefined })
    await streamInto(conv, messageId, messageId, message)
  })
  return true
}

/** What reading an answer's stream feeds: its text and calls as they come, its live metrics. */
interface Sink {
  onDelta: (delta: string, part: DeltaPart) => void
  onToolCall: (piece: ToolCallDelta) => void
  clock: ReturnType<typeof streamClock>
  signal: AbortSignal
  /** The model the answer is asked of, once chosen. */
  model: string
}

/**
 * Streams the answer to the branch ending at `upTo` into message `messageId`: a new one, or
 * `continued` (then `upTo` is that message, and the answer is added to its text). A new answer
 * goes with a stream id, so that the server keeps it going if this page goes away
 * (resumeAnswers); a continued one could not be told apart from its start, so it goes without.
 * Only this site's own API gets one: another server's CORS rules may refuse the extra header.
 * `column`: one of several answers at once (generateSiblings), which owns their shared controller.
 */
async function streamInto(
  conv: Conversation,
  messageId: string,
  upTo: string,
  continued?: Message,
  column?: { variant: Variant; controller: AbortController },
): Promise<void> {
  const convId = conv.id
  const sameSite = new URL(apiBaseHref()).origin === location.origin
  const streamId = continued || !sameSite ? undefined : newId()
  const variant = column?.variant ?? {}
  const controller = column?.controller ?? new AbortController()
  await writeAnswer(conv, messageId, controller, { streamId, continued, shared: !!column }, async (sink) => {
    sink.model = variant.model ?? (await pickModel(conv))
    const question = pathTo(conv.messages, upTo).findLast((m) => m.role === 'user')
    const sources = await preparePassages(convId, question?.id, sink.signal, () =>
      chatStore.getState().updateMessage(convId, messageId, { searching: true }),
    )
    const current = chatStore.getState().conversations[convId] ?? conv
    const messages = requestMessages(
      variant.systemPrompt === undefined ? current : { ...current, systemPrompt: variant.systemPrompt },
      upTo,
    )
    // The last message is this (still empty) answer's, which requestMessages leaves out.
    const promptTokensEstimate = estimateTokens(messages.map(textOf).join('\n'))
    chatStore
      .getState()
      .updateMessage(convId, messageId, { promptTokensEstimate, searching: undefined, ...(sources.length ? { sources } : {}) })
    sink.clock.start()
    const request = {
      model: sink.model,
      messages,
      params: { ...conv.params, ...paramsOf(variant) },
      conversationId: conv.id,
      streamId,
      continueFinal: !!continued,
      tools: conv.tools,
      toolChoice: conv.toolChoice,
    }
    // A model not in memory loads as the request waits: the picker shows its progress meanwhile
    // (on a server that reports models' states; one read when the model is already loaded).
    if (modelsStore.getState().models.some((m) => m.state)) void followLoad(sink.model, sink.signal)
    return streamChat(apiConfig(), request, sink.onDelta, sink.signal, sink.onToolCall)
  })
}

/** How an answer is written: after `continued`'s text, or `resumed` from the server (its text so
 *  far sent again); `streamId`: the id the server keeps it under, if any; `shared`: one of several
 *  answers at once, whose caller (generateSiblings, resume) holds the conversation's place in `running`. */
interface Writing {
  streamId?: string
  continued?: Message
  resumed?: boolean
  shared?: boolean
}

/**
 * Writes the answer `read` streams into message `messageId`, live, then how it ended. The message
 * carries its stream id while streaming (none: one the server keeps no more), and Stop stops a
 * kept answer on the server too.
 */
async function writeAnswer(
  conv: Conversation,
  messageId: string,
  controller: AbortController,
  { streamId, continued, resumed, shared }: Writing,
  read: (sink: Sink) => Promise<StreamResult>,
): Promise<void> {
  const convId = conv.id
  if (!shared) running.set(convId, controller)
  chatStore.getState().updateMessage(convId, messageId, { streamId })
  if (streamId) {
    const cfg = apiConfig()
    // Hanging up no longer stops a kept answer on the server: Stop says so.
    controller.signal.addEventListener('abort', () => void stopChat(cfg, convId, streamId).catch(() => undefined))
  }
  let content = continued?.content ?? ''
  let reasoning = continued?.reasoning ?? ''
  const calls: PendingCalls = new Map()
  const clock = streamClock()
  // While streaming, the metrics (from the chunks counted so far) show the live tokens/s.
  const text = () => ({
    content,
    ...(reasoning ? { reasoning } : {}),
    ...(calls.size ? { toolCalls: toolCallList(calls) } : {}),
    metrics: clock.metrics(null),
  })
  // Rendered now rather than in a later microtask, so the throttle measures the real cost.
  const throttle = renderThrottle(() => flushSync(() => chatStore.getState().updateMessage(convId, messageId, text())))
  const sink: Sink = {
    onDelta: (delta, part) => {
      clock.chunk()
      if (part === 'reasoning') reasoning += delta
      else content += delta
      throttle.request()
    },
    onToolCall: (piece) => {
      clock.chunk()
      addToolCallDelta(calls, piece)
      throttle.request()
    },
    clock,
    signal: controller.signal,
    model: conv.model,
  }

  let final: Partial<Message>
  const baseUrl = apiBaseHref()
  try {
    const result = await read(sink)
    final = { ...outcome(result, content !== '' || reasoning !== '' || calls.size > 0), metrics: clock.metrics(result) }
  } catch (e) {
    final = controller.signal.aborted
      ? { status: 'stopped', metrics: clock.metrics(null) }
      : { status: content || reasoning || calls.size ? 'interrupted' : 'error', error: errorFromException(e) }
  } finally {
    if (!shared) running.delete(convId)
    throttle.cancel()
  }
  // Stopped before anything arrived: no "Stopped · ~0 tokens" answer is left behind.
  if (final.status === 'stopped' && !continued && !resumed && !content && !reasoning && !calls.size) {
    chatStore.getState().removeVersion(convId, messageId)
    return
  }
  if (final.error) final.error = { ...final.error, baseUrl }
  if (continued?.metrics && final.metrics) final.metrics = addMetrics(continued.metrics, final.metrics)
  // The live metrics give way to the final ones (none after an error); the wait is over.
  chatStore.getState().updateMessage(convId, messageId, {
    ...text(),
    metrics: undefined,
    promptTokensEstimate: undefined,
    searching: undefined,
    streamId: undefined,
    ...final,
    model: sink.model,
  })
}

/**
 * Picks up the answers that were streaming when this page (or the last tab showing them) went
 * away: the server kept each going (for STREAM_RESUME_S) and sends it again from its start, then
 * the rest live. One tab resumes an answer (answerLock); one the server no longer keeps stays
 * interrupted, as it was shown.
 */
export function resumeAnswers(): void {
  for (const conv of Object.values(chatStore.getState().conversations)) {
    const kept = conv.messages.flatMap((m) => (m.status === 'interrupted' && m.streamId ? [{ id: m.id, streamId: m.streamId }] : []))
    if (kept.length) void resume(conv.id, kept)
  }
}

/**
 * Resumes a conversation's kept answers under its one lock and one Stop: several only side by
 * side (compare.ts), whose columns were written at once (one at a time, the second would find
 * the lock held by the first and stay interrupted).
 */
async function resume(convId: string, kept: { id: string; streamId: string }[]): Promise<void> {
  await exclusive(convId, async () => {
    const controller = new AbortController()
    running.set(convId, controller)
    try {
      await Promise.all(kept.map(({ id, streamId }) => resumeOne(convId, id, streamId, controller)))
    } finally {
      running.delete(convId)
    }
  })
}

async function resumeOne(convId: string, messageId: string, streamId: string, controller: AbortController): Promise<void> {
  const conv = chatStore.getState().conversations[convId]
  const message = conv?.messages.find((m) => m.id === messageId)
  // Another tab may have resumed it (and finished) meanwhile.
  if (!conv || message?.status !== 'interrupted' || message.streamId !== streamId) return
  let body: ReadableStream<BufferSource>
  try {
    body = await resumeChat(apiConfig(), convId, streamId, controller.signal)
  } catch {
    // No longer kept (or the server is gone): it stays interrupted, with Continue and Regenerate.
    chatStore.getState().updateMessage(convId, messageId, { streamId: undefined })
    return
  }
  // The server sends it from its first chunk: the text grows again from nothing.
  chatStore.getState().updateMessage(convId, messageId, { status: 'streaming', error: undefined })
  await writeAnswer(conv, messageId, controller, { streamId, resumed: true, shared: true }, async (sink) => {
    sink.model = message.model ?? conv.model
    return readChatStream(body, sink.onDelta, sink.onToolCall)
  })
}

/** The sampling settings a variant sets (the others stay the conversation's). */
function paramsOf(variant: Variant): Partial<Conversation['params']> {
  return {
    ...(variant.temperature !== undefined ? { temperature: variant.temperature } : {}),
    ...(variant.seed !== undefined ? { seed: variant.seed } : {}),
  }
}

/** Stops the answer being written in the conversation, in this tab or another. */
export function stop(convId: string): void {
  const mine = running.get(convId)
  if (mine) mine.abort()
  else stops()?.postMessage(convId)
}
