import { toolsError } from '../chat/tools'
import type { Attachment, Conversation, Message, Metrics, Passage, ToolCall, ToolDefinition, Variant } from '../types'
import { DEFAULT_PARAMS } from '../types'

const FORMAT = 'localchat.conversations'

export function exportJson(conversations: Conversation[]): string {
  return JSON.stringify({ format: FORMAT, version: 1, exportedAt: new Date().toISOString(), conversations }, null, 2)
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
const str = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback)
const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback)

/** The settings a side-by-side answer was asked with (chat/compare.ts): its column's heading. */
function toVariant(v: unknown): Variant | undefined {
  if (!isObj(v)) return undefined
  const variant: Variant = {}
  if (typeof v.model === 'string') variant.model = v.model
  if (typeof v.temperature === 'number') variant.temperature = v.temperature
  if (typeof v.seed === 'number' || v.seed === null) variant.seed = v.seed
  if (typeof v.systemPrompt === 'string') variant.systemPrompt = v.systemPrompt
  return variant
}

function toMetrics(v: unknown): Metrics | undefined {
  if (!isObj(v) || typeof v.completionTokens !== 'number') return undefined
  const orNull = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null)
  return {
    completionTokens: v.completionTokens,
    approximate: v.approximate === true,
    ttftMs: orNull(v.ttftMs),
    tokensPerSecond: orNull(v.tokensPerSecond),
    durationMs: num(v.durationMs, 0),
  }
}

function toAttachments(v: unknown): Attachment[] | undefined {
  if (!Array.isArray(v)) return undefined
  const list = v.filter(
    (a): a is Attachment => isObj(a) && typeof a.id === 'string' && typeof a.name === 'string' && typeof a.text === 'string',
  )
  return list.map((a) => ({
    id: a.id,
    name: a.name,
    size: num(a.size, a.text.length),
    kind: a.kind === 'pdf' || a.kind === 'image' ? a.kind : 'text',
    text: a.text,
    ...(typeof a.dataUrl === 'string' && a.dataUrl.startsWith('data:image/') ? { dataUrl: a.dataUrl } : {}),
  }))
}

function toPassages(v: unknown): Passage[] | undefined {
  if (!Array.isArray(v)) return undefined
  const list = v.filter((p): p is Passage => isObj(p) && typeof p.file === 'string' && typeof p.text === 'string')
  return list.map((p, i) => ({ n: num(p.n, i + 1), file: p.file, index: num(p.index, 0), total: num(p.total, 1), text: p.text }))
}

function toToolCall(v: unknown): ToolCall | null {
  if (!isObj(v) || !isObj(v.function) || typeof v.function.name !== 'string') return null
  return {
    id: str(v.id, ''),
    type: 'function',
    function: { name: v.function.name, arguments: str(v.function.arguments, '') },
  }
}

// Only known fields with the right types are kept: the file may come from anywhere.
function toMessage(v: unknown, index: number): Message | null {
  if (!isObj(v) || (v.role !== 'user' && v.role !== 'assistant') || typeof v.content !== 'string') return null
  const message: Message = { id: str(v.id, `m${index}`), role: v.role, content: v.content, createdAt: num(v.createdAt, Date.now()) }
  // Branches: a parent that names no earlier message is mended on import (store/branches.ts).
  if (typeof v.parentId === 'string' || v.parentId === null) message.parentId = v.parentId
  const attachments = toAttachments(v.attachments)
  if (v.role === 'user' && attachments?.length) message.attachments = attachments
  const passages = toPassages(v.role === 'user' ? v.passages : v.sources)
  if (passages?.length) message[v.role === 'user' ? 'passages' : 'sources'] = passages
  if (v.role === 'assistant') {
    message.status = v.status === 'stopped' || v.status === 'interrupted' || v.status === 'error' ? v.status : 'done'
    const metrics = toMetrics(v.metrics)
    if (metrics) message.metrics = metrics
    if (typeof v.model === 'string') message.model = v.model
    if (typeof v.reasoning === 'string' && v.reasoning) message.reasoning = v.reasoning
    if (typeof v.finishReason === 'string') message.finishReason = v.finishReason
    const calls = Array.isArray(v.toolCalls) ? v.toolCalls.map(toToolCall).filter((c) => c !== null) : []
    if (calls.length) message.toolCalls = calls
    const variant = toVariant(v.variant)
    if (variant) message.variant = variant
  }
  return message
}

function toConversation(v: unknown): Conversation | null {
  if (!isObj(v) || !Array.isArray(v.messages) || typeof v.id !== 'string') return null
  const messages = v.messages.map(toMessage)
  if (messages.some((m) => m === null)) return null
  const p = isObj(v.params) ? v.params : {}
  const now = Date.now()
  return {
    id: v.id,
    title: str(v.title, ''),
    createdAt: num(v.createdAt, now),
    updatedAt: num(v.updatedAt, now),
    systemPrompt: str(v.systemPrompt, ''),
    model: str(v.model, ''),
    params: {
      temperature: num(p.temperature, DEFAULT_PARAMS.temperature),
      top_p: num(p.top_p, DEFAULT_PARAMS.top_p),
      max_tokens: num(p.max_tokens, DEFAULT_PARAMS.max_tokens),
      seed: typeof p.seed === 'number' ? p.seed : null,
    },
    messages: messages as Message[],
    ...(typeof v.current === 'string' ? { current: v.current } : {}),
    // Tools that are not a valid list are dropped rather than refusing the whole file.
    ...(Array.isArray(v.tools) && v.tools.length && !toolsError(v.tools) ? { tools: v.tools as ToolDefinition[] } : {}),
    ...(v.toolChoice === 'auto' || v.toolChoice === 'required' || v.toolChoice === 'none' ? { toolChoice: v.toolChoice } : {}),
    ...(v.pinned === true ? { pinned: true } : {}),
    ...(v.archived === true ? { archived: true } : {}),
    ...(typeof v.folder === 'string' && v.folder.trim() ? { folder: v.folder.trim() } : {}),
  }
}

/**
 * What makes two conversations the same for an import: title and messages, whatever their ids
 * (a conversation imported as a copy got a new id). Importing a file twice then adds nothing.
 */
export function sameContent(a: Conversation, b: Conversation): boolean {
  const key = (c: Conversation) => JSON.stringify([c.title, c.messages.map((m) => [m.id, m.role, m.content])])
  return key(a) === key(b)
}

/** Parses an export file (or a bare array of conversations); throws with a reason when it is not one. */
export function parseImport(text: string): Conversation[] {
  const data: unknown = JSON.parse(text)
  const list = Array.isArray(data) ? data : isObj(data) ? data.conversations : undefined
  if (!Array.isArray(list)) throw new Error('No "conversations" list in this file')
  const out = list.map(toConversation)
  const bad = out.findIndex((c) => c === null)
  if (bad >= 0) throw new Error(`Conversation #${bad + 1} is not in the expected shape`)
  return out as Conversation[]
}
