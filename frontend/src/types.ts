export type Role = 'user' | 'assistant'

/** Where an assistant answer ended up; `streaming` only while its request is open. */
export type MessageStatus = 'streaming' | 'done' | 'stopped' | 'error' | 'interrupted'

export type ErrorKind =
  | 'unreachable'
  /** Something answered, but with a web page or other non-API body: usually a base URL without /v1. */
  | 'not_api'
  | 'auth'
  | 'rate_limit'
  | 'context_length'
  | 'bad_request'
  | 'server'
  | 'interrupted'

export interface ChatError {
  kind: ErrorKind
  message: string
  status?: number
  retryAfterS?: number
  /** The API address the request went to (absolute): the notice tells when Settings have changed since. */
  baseUrl?: string
}

export interface Metrics {
  completionTokens: number
  /** True when the server sent no usage (stopped early) and tokens were counted from chunks. */
  approximate: boolean
  promptTokens?: number
  ttftMs: number | null
  tokensPerSecond: number | null
  durationMs: number
}

/** A file attached to a user message: its text is kept with the chat, so it survives a reload. */
export interface Attachment {
  id: string
  name: string
  /** The file's size in bytes. */
  size: number
  kind: 'text' | 'pdf' | 'image'
  /** The file's text; empty for an image, which is sent as `dataUrl` (to a model that takes images). */
  text: string
  dataUrl?: string
}

/** A piece of an attached file given to the model, numbered [n] for it to cite. */
export interface Passage {
  n: number
  file: string
  /** Its place among the file's passages (0-based); `total` 1: the whole file. */
  index: number
  total: number
  text: string
}

/** A function call the model asked for (OpenAI's `tool_calls` item); the page never runs it. */
export interface ToolCall {
  id: string
  type: 'function'
  /** `arguments`: JSON text as the model wrote it; partial while streaming or if stopped. */
  function: { name: string; arguments: string }
}

/** An OpenAI tool definition: `{"type": "function", "function": {"name", "description"?, "parameters"?}}`. */
export interface ToolDefinition {
  type: 'function'
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean }
}

/** OpenAI's `tool_choice` modes the chat settings offer. */
export type ToolChoice = 'auto' | 'required' | 'none'

export interface Message {
  id: string
  role: Role
  content: string
  /** The model's reasoning, from `reasoning_content` / `reasoning` deltas (`<think>` stays in content). */
  reasoning?: string
  createdAt: number
  status?: MessageStatus
  error?: ChatError
  metrics?: Metrics
  model?: string
  finishReason?: string | null
  /** Functions the answer called (absent in messages saved before tool calls, or without any). */
  toolCalls?: ToolCall[]
  /**
   * The message this one answers or follows (null: the first). Absent only in conversations
   * saved before branches, where each message follows the one before it (store/branches.ts).
   */
  parentId?: string | null
  /** User messages: attached files, and the passages of them chosen for the prompt. */
  attachments?: Attachment[]
  passages?: Passage[]
  /** Assistant messages: the passages the question came with, which its citations point to. */
  sources?: Passage[]
  /** Assistant messages while waiting for the first token: the prompt's estimated size. */
  promptTokensEstimate?: number
  /** Assistant messages while the question's files are searched for passages. */
  searching?: boolean
  /** Assistant messages while streaming: the X-Message-Id it was asked with, by which a page
   *  reloaded meanwhile picks it up from the server (generate.ts, resumeAnswers). */
  streamId?: string
  /** Assistant messages asked side by side (chat/compare.ts): the settings this one was asked with. */
  variant?: Variant
}

/**
 * What one side-by-side answer asks differently from its conversation's settings (absent: the
 * conversation's own): another model, temperature, seed or system prompt.
 */
export interface Variant {
  model?: string
  temperature?: number
  /** null: a fresh random seed. */
  seed?: number | null
  systemPrompt?: string
}

export interface GenParams {
  temperature: number
  top_p: number
  max_tokens: number
  /** null: a fresh random seed on the server for every request. */
  seed: number | null
}

export interface Conversation {
  id: string
  title: string
  createdAt: number
  updatedAt: number
  systemPrompt: string
  params: GenParams
  model: string
  /** Every message of every branch, parents before children (store/branches.ts). */
  messages: Message[]
  /** The message the reader is on: the branch shown runs through it. */
  current?: string
  /** Tools offered to the model in this chat (absent or empty: none are sent). */
  tools?: ToolDefinition[]
  /** Sent as `tool_choice` when there are tools; absent: "auto". */
  toolChoice?: ToolChoice
  /** Shown first in the sidebar. */
  pinned?: boolean
  /** Out of the sidebar's list until "Archived" is opened (or a search finds it). */
  archived?: boolean
  /** The sidebar folder it is filed under (absent: none). */
  folder?: string
}

export const DEFAULT_PARAMS: GenParams = { temperature: 0.7, top_p: 0.95, max_tokens: 1024, seed: null }
