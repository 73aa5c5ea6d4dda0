import type { EventSourceMessage } from 'eventsource-parser'
import { EventSourceParserStream } from 'eventsource-parser/stream'
import type { ChatError, ErrorKind, GenParams, ToolCall, ToolChoice, ToolDefinition } from '../types'

export interface ApiConfig {
  /** e.g. `/v1` (same origin) or `http://127.0.0.1:8000/v1`. */
  baseUrl: string
  apiKey: string
}

export interface ModelInfo {
  id: string
  /** Non-standard field of this backend; absent on other OpenAI-compatible servers. */
  capabilities?: string[]
  /** Non-standard too: the most tokens one input (prompt and answer, or text to embed) may hold. */
  max_model_len?: number
  /** This backend with several models (MODELS_DIR): whether the model is in memory, and its load's progress. */
  state?: ModelState
  progress?: number | null
  size_bytes?: number
  error?: string | null
  /** Non-standard too, for the model's details: its parameter count and quantisation where known. */
  parameters?: number | null
  quantization?: string | null
  memory_bytes?: number | null
}

export type ModelState = 'unloaded' | 'loading' | 'loaded' | 'failed'

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens?: number
}

/** A part of a user message for a model that takes images (OpenAI's content parts). */
export type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }

/** One message of a chat request; `tool` answers the assistant's call with `tool_call_id`. */
export type ChatRequestMessage =
  | { role: 'system' | 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; content: string; tool_call_id: string }

export interface StreamResult {
  /** The server sent `data: [DONE]`. */
  sawDone: boolean
  finishReason: string | null
  usage: Usage | null
  /** An error event sent after the stream had started. */
  error: ChatError | null
}

export class ApiError extends Error {
  readonly info: ChatError
  constructor(info: ChatError) {
    super(info.message)
    this.info = info
  }
}

export function apiUrl(baseUrl: string, path: string): string {
  const base = baseUrl.trim().replace(/\/+$/, '') || '/v1'
  return `${base}${path}`
}

function headers(cfg: ApiConfig, json: boolean): HeadersInit {
  const h: Record<string, string> = {}
  if (json) h['Content-Type'] = 'application/json'
  if (cfg.apiKey.trim()) h.Authorization = `Bearer ${cfg.apiKey.trim()}`
  return h
}

interface OpenAIErrorBody {
  error?: { message?: unknown; type?: unknown; code?: unknown }
}

/** Maps an OpenAI-shaped error (HTTP status and/or `error.code`) to what the page tells the user. */
function classifyError(status: number | undefined, body: OpenAIErrorBody | null): ChatError {
  const err = body?.error
  const code = typeof err?.code === 'string' ? err.code : ''
  const message = typeof err?.message === 'string' ? err.message : status ? `HTTP ${status}` : 'Unknown error'
  let kind: ErrorKind
  if (code === 'context_length_exceeded') kind = 'context_length'
  else if (status === 401 || status === 403 || code === 'invalid_api_key') kind = 'auth'
  // No such route: this server's `unknown_url`, or a 404 that is no OpenAI error at all (another
  // framework's {"detail": "Not Found"}). The API answers a wrong model with its own 404.
  else if (code === 'unknown_url' || (status === 404 && !err)) kind = 'not_api'
  else if (status === 429) kind = 'rate_limit'
  else if (status !== undefined && status >= 400 && status < 500) kind = 'bad_request'
  else kind = 'server'
  return { kind, message, ...(status !== undefined ? { status } : {}) }
}

export async function errorFromResponse(res: Response): Promise<ChatError> {
  let body: OpenAIErrorBody | null = null
  try {
    body = (await res.json()) as OpenAIErrorBody
  } catch {
    // A proxy's HTML error page: the status alone has to do.
  }
  const info = classifyError(res.status, body)
  const retryAfter = Number(res.headers.get('Retry-After'))
  if (info.kind === 'rate_limit' && Number.isFinite(retryAfter) && retryAfter > 0) info.retryAfterS = retryAfter
  return info
}

/** fetch() rejects with a TypeError when nothing answers (server down, wrong URL, CORS refused). */
export function errorFromException(e: unknown): ChatError {
  if (e instanceof ApiError) return e.info
  const message = e instanceof Error ? e.message : String(e)
  return { kind: 'unreachable', message }
}

/**
 * An answer that is not the API's JSON or event stream: a success with content, or a 404/405, is
 * then a page of a web site (the chat page's own index.html, when the base URL lacks /v1), not an
 * API error.
 */
function notApi(url: string, res: Response): ChatError | null {
  const type = res.headers.get('Content-Type') ?? ''
  if (/json|event-stream/i.test(type) || res.status === 204 || !(res.ok || res.status === 404 || res.status === 405)) return null
  const what = type.split(';')[0] || 'no content type'
  return { kind: 'not_api', message: `${url} answered HTTP ${res.status} with ${what}, not the API's JSON`, status: res.status }
}

async function request(cfg: ApiConfig, path: string, init: RequestInit): Promise<Response> {
  const url = apiUrl(cfg.baseUrl, path)
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (e) {
    if (init.signal?.aborted) throw e
    throw new ApiError(errorFromException(e))
  }
  const wrongPlace = notApi(url, res)
  if (wrongPlace) throw new ApiError(wrongPlace)
  if (!res.ok) throw new ApiError(await errorFromResponse(res))
  return res
}

export async function listModels(cfg: ApiConfig, signal?: AbortSignal): Promise<ModelInfo[]> {
  const res = await request(cfg, '/models', { headers: headers(cfg, false), signal })
  const body = (await res.json()) as { data?: ModelInfo[] }
  return Array.isArray(body.data) ? body.data : []
}

/** One model's card: where its load stands, as the server reports it. */
export async function getModel(cfg: ApiConfig, id: string, signal?: AbortSignal): Promise<ModelInfo> {
  const res = await request(cfg, `/models/${encodeURIComponent(id)}`, { headers: headers(cfg, false), signal })
  return (await res.json()) as ModelInfo
}

/** Chat models only: by the backend's `capabilities` field, else by name for servers without it. */
export function chatModels(models: ModelInfo[]): ModelInfo[] {
  if (models.some((m) => Array.isArray(m.capabilities))) {
    return models.filter((m) => m.capabilities?.includes('chat'))
  }
  return models.filter((m) => !/embed|minilm/i.test(m.id))
}

/** What a delta adds to: the answer, or the reasoning before it. */
export type DeltaPart = 'content' | 'reasoning'

/**
 * A piece of a streamed tool call (`delta.tool_calls[]`): the first piece of call `index` brings
 * its id, type and name, later ones append to its arguments.
 */
export interface ToolCallDelta {
  index: number
  id?: string | null
  type?: string | null
  function?: { name?: string | null; arguments?: string | null } | null
}

interface ChunkEvent {
  choices?: {
    // `reasoning_content` (DeepSeek, vLLM, llama.cpp) or `reasoning` (OpenRouter, Ollama).
    delta?: {
      content?: string | null
      reasoning_content?: string | null
      reasoning?: string | null
      tool_calls?: ToolCallDelta[] | null
    }
    finish_reason?: string | null
  }[]
  usage?: Usage | null
  error?: OpenAIErrorBody['error']
}

/**
 * Reads an OpenAI chat-completions SSE body. Ends on `data: [DONE]` or when the body closes
 * without it; an `error` event or a dropped connection is returned in `error`, not thrown.
 * Only an abort (the Stop button) throws. Tool-call pieces go to `onToolCall` as they come.
 */
export async function readChatStream(
  body: ReadableStream<BufferSource>,
  onDelta: (text: string, part: DeltaPart) => void,
  onToolCall?: (piece: ToolCallDelta) => void,
): Promise<StreamResult> {
  const result: StreamResult = { sawDone: false, finishReason: null, usage: null, error: null }
  const reader = body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader()
  try {
    for (;;) {
      let next: ReadableStreamReadResult<EventSourceMessage>
      try {
        next = await reader.read()
      } catch (e) {
        // Stop button: the caller knows. Anything else is the connection dropping mid-answer.
        if (e instanceof DOMException && e.name === 'AbortError') throw e
        result.error = { kind: 'interrupted', message: e instanceof Error ? e.message : String(e) }
        break
      }
      const { value, done } = next
      if (done) break
      if (value.data === '[DONE]') {
        result.sawDone = true
        break
      }
      let event: ChunkEvent
      try {
        event = JSON.parse(value.data) as ChunkEvent
      } catch {
        continue
      }
      if (event.error) {
        result.error = classifyError(undefined, { error: event.error })
        continue
      }
      if (event.usage) result.usage = event.usage
      for (const choice of event.choices ?? []) {
        const reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning
        if (reasoning) onDelta(reasoning, 'reasoning')
        const text = choice.delta?.content
        if (text) onDelta(text, 'content')
        for (const piece of choice.delta?.tool_calls ?? []) onToolCall?.(piece)
        if (choice.finish_reason) result.finishReason = choice.finish_reason
      }
    }
  } finally {
    // Releases the connection when we stop at [DONE] before the server closes it.
    await reader.cancel().catch(() => undefined)
  }
  return result
}

export interface ChatStreamRequest {
  model: string
  messages: ChatRequestMessage[]
  params: GenParams
  /** Sent as X-Conversation-Id: Nginx routes a conversation's turns to one replica (its prefix cache),
   *  and the server caches each answer there for the next turn, the first one's too. */
  conversationId: string
  /** Sent as X-Message-Id: the server then keeps the answer going when the page goes away, for
   *  resumeChat (this backend; other servers ignore it). */
  streamId?: string
  /** Carry on the final (assistant) message instead of answering it: vLLM's extension fields. */
  continueFinal?: boolean
  /** Sent with `tool_choice` (default "auto") when not empty. */
  tools?: ToolDefinition[]
  toolChoice?: ToolChoice
}

export async function streamChat(
  cfg: ApiConfig,
  req: ChatStreamRequest,
  onDelta: (text: string, part: DeltaPart) => void,
  signal: AbortSignal,
  onToolCall?: (piece: ToolCallDelta) => void,
): Promise<StreamResult> {
  const { seed, ...sampling } = req.params
  const tools = req.tools?.length ? { tools: req.tools, tool_choice: req.toolChoice ?? 'auto' } : {}
  const res = await request(cfg, '/chat/completions', {
    method: 'POST',
    headers: {
      ...headers(cfg, true),
      'X-Conversation-Id': req.conversationId,
      ...(req.streamId ? { 'X-Message-Id': req.streamId } : {}),
    },
    body: JSON.stringify({
      model: req.model,
      messages: req.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...sampling,
      ...(seed !== null ? { seed } : {}),
      ...(req.continueFinal ? { continue_final_message: true, add_generation_prompt: false } : {}),
      ...tools,
    }),
    signal,
  })
  if (!res.body) throw new ApiError({ kind: 'server', message: 'Empty response body' })
  return readChatStream(res.body, onDelta, onToolCall)
}

/** Where the server keeps an answer sent with X-Message-Id (its conversation in the header too, for Nginx's affinity). */
function keptStream(cfg: ApiConfig, conversationId: string, streamId: string, method: string, signal?: AbortSignal) {
  const path = `/stream/${encodeURIComponent(conversationId)}/${encodeURIComponent(streamId)}`
  return request(cfg, path, { method, headers: { ...headers(cfg, false), 'X-Conversation-Id': conversationId }, signal })
}

/**
 * The body of an answer the server kept going after its page went away (streamChat's `streamId`),
 * from its first chunk: read it with readChatStream. Throws ApiError (404) when it is no longer kept.
 */
export async function resumeChat(
  cfg: ApiConfig,
  conversationId: string,
  streamId: string,
  signal: AbortSignal,
): Promise<ReadableStream<BufferSource>> {
  const res = await keptStream(cfg, conversationId, streamId, 'GET', signal)
  if (!res.body) throw new ApiError({ kind: 'server', message: 'Empty response body' })
  return res.body
}

/** Stops a kept answer on the server: the page's leaving no longer does. */
export async function stopChat(cfg: ApiConfig, conversationId: string, streamId: string): Promise<void> {
  await keptStream(cfg, conversationId, streamId, 'DELETE')
}

/** The embeddings models: by the backend's `capabilities`, else by name for servers without it. */
export function embeddingModels(models: ModelInfo[]): ModelInfo[] {
  if (models.some((m) => Array.isArray(m.capabilities))) return models.filter((m) => m.capabilities?.includes('embeddings'))
  return models.filter((m) => /embed|minilm/i.test(m.id))
}

/** One vector per input, in input order, from POST /embeddings. */
export async function createEmbeddings(
  cfg: ApiConfig,
  model: string,
  input: string[],
  signal?: AbortSignal,
): Promise<number[][]> {
  const res = await request(cfg, '/embeddings', {
    method: 'POST',
    headers: headers(cfg, true),
    body: JSON.stringify({ model, input }),
    signal,
  })
  const body = (await res.json()) as { data?: { index: number; embedding: number[] }[] }
  const vectors: number[][] = []
  for (const item of body.data ?? []) vectors[item.index] = item.embedding
  if (vectors.length !== input.length || vectors.some((v) => !Array.isArray(v))) {
    throw new ApiError({ kind: 'server', message: `The embeddings answer holds ${body.data?.length ?? 0} vectors for ${input.length} inputs` })
  }
  return vectors
}
