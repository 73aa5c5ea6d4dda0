import type { Conversation } from '../types'
import { ApiError, errorFromException, errorFromResponse } from './client'

/** The accounts' and the server storage's routes (docs/accounts.md): /auth/… and /api/…. */

export type AuthMode = 'none' | 'password' | 'header'

export interface User {
  id: number
  username: string
  email: string | null
  role: 'admin' | 'user'
  disabled: boolean
  created_at: string
  rpm_limit: number | null
  tokens_per_day_limit: number | null
}

export interface AuthStatus {
  auth: AuthMode
  user: User | null
  signup_open: boolean
}

export interface UsageCounts {
  requests: number
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

export interface UsageRow extends UsageCounts {
  day: string
  user_id: number | null
  username: string | null
  api_key_id: number | null
  key_name: string | null
  key_prefix: string | null
  model: string
}

export interface UsageReport {
  start: string
  end: string
  total: UsageCounts
  daily: (UsageCounts & { day: string })[]
  users: (UsageCounts & { user_id: number | null; username: string | null })[]
  keys: (UsageCounts & Pick<UsageRow, 'user_id' | 'username' | 'api_key_id' | 'key_name' | 'key_prefix'>)[]
  rows: UsageRow[]
}

/** A personal API key as listed: never the key itself, which only its creation answers. */
export interface ApiKey {
  id: number
  name: string
  /** The key's first 12 characters, to tell keys apart. */
  prefix: string
  created_at: string
  last_used_at: string | null
}

export interface CreatedKey extends ApiKey {
  key: string
}

/** One conversation as the server keeps it: `version` is what a later write names as its base. */
export interface Envelope {
  id: string
  version: number
  deleted: boolean
  conversation: Conversation | null
}

export interface ChangesPage {
  cursor: number
  more: boolean
  changes: Envelope[]
}

/** The PATCH body: what this device changed since `base_version` (the server merges it). */
export interface ConversationChange {
  base_version: number
  fields: Partial<Omit<Conversation, 'id' | 'messages'>>
  messages: Conversation['messages']
  removed: string[]
}

/** A write refused because another device wrote first (409): the server's copy. */
export class Conflict extends Error {
  readonly current: Envelope
  constructor(current: Envelope) {
    super('conflict')
    this.current = current
  }
}

/**
 * Where /auth and /api live: the server of the API base URL (`/v1` stripped), the page's own
 * origin when that is empty. The session is a cookie, so only a same-site server signs in.
 */
export function serverRoot(apiBaseUrl: string): string {
  return apiBaseUrl.trim().replace(/\/+$/, '').replace(/\/v1$/, '')
}

/** What a refused account call says: the server's message (it says what to fix). */
export const reason = (e: unknown) => (e instanceof ApiError ? e.info.message : e instanceof Error ? e.message : String(e))

export class AccountApi {
  readonly root: string
  constructor(root: string) {
    this.root = root
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    let res: Response
    try {
      res = await fetch(`${this.root}${path}`, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (e) {
      throw new ApiError(errorFromException(e))
    }
    if (res.status === 409) {
      const found = (await res.clone().json().catch(() => null)) as { current?: Envelope } | null
      if (found?.current) throw new Conflict(found.current)
    }
    if (!res.ok) throw new ApiError(await errorFromResponse(res))
    return res
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T
  }

  /** The mode and who is signed in; a server without accounts (AUTH=none, another API) is 'none'. */
  async status(): Promise<AuthStatus> {
    try {
      // A server that does not answer in time is treated as one without accounts.
      const res = await fetch(`${this.root}/auth/status`, { credentials: 'same-origin', signal: AbortSignal.timeout(10_000) })
      if (res.ok && /json/.test(res.headers.get('Content-Type') ?? '')) return (await res.json()) as AuthStatus
    } catch {
      // Unreachable: the chat's own error says so when it is used.
    }
    return { auth: 'none', user: null, signup_open: false }
  }

  signUp = (username: string, password: string) => this.json<User>('POST', '/auth/signup', { username, password })
  logIn = (username: string, password: string) => this.json<User>('POST', '/auth/login', { username, password })
  logOut = async () => void (await this.send('POST', '/auth/logout'))

  users = () => this.json<User[]>('GET', '/auth/users')
  createUser = (user: { username: string; password: string; role: User['role'] }) =>
    this.json<User>('POST', '/auth/users', user)
  updateUser = (
    id: number,
    change: Partial<Pick<User, 'disabled' | 'role' | 'rpm_limit' | 'tokens_per_day_limit'>> & { password?: string },
  ) =>
    this.json<User>('PATCH', `/auth/users/${id}`, change)
  deleteUser = async (id: number) => void (await this.send('DELETE', `/auth/users/${id}`))
  usage = () => this.json<UsageReport>('GET', '/auth/usage')

  /** The signed-in user's own: password (every other session of theirs ends), keys, usage. */
  changePassword = async (currentPassword: string, newPassword: string) =>
    void (await this.send('POST', '/auth/password', { current_password: currentPassword, new_password: newPassword }))
  keys = () => this.json<ApiKey[]>('GET', '/auth/keys')
  createKey = (name: string) => this.json<CreatedKey>('POST', '/auth/keys', { name })
  revokeKey = async (id: number) => void (await this.send('DELETE', `/auth/keys/${id}`))
  myUsage = () => this.json<UsageReport>('GET', '/auth/me/usage')

  changes = (since: number) => this.json<ChangesPage>('GET', `/api/conversations?since=${since}&limit=100`)
  /** Creates a conversation (no base) or replaces it; Conflict when the base is not its version. */
  put = (conv: Conversation, baseVersion?: number) =>
    this.json<Envelope>('PUT', `/api/conversations/${encodeURIComponent(conv.id)}`, {
      conversation: conv,
      ...(baseVersion ? { base_version: baseVersion } : {}),
    })
  patch = (id: string, change: ConversationChange) =>
    this.json<Envelope>('PATCH', `/api/conversations/${encodeURIComponent(id)}`, change)
  remove = (id: string, baseVersion: number) =>
    this.json<Envelope>('DELETE', `/api/conversations/${encodeURIComponent(id)}?base_version=${baseVersion}`)
  /** The ids the server added, and those it already had (skipped). */
  importMany = (conversations: Conversation[]) =>
    this.json<{ imported: string[]; skipped: string[] }>('POST', '/api/conversations/import', { conversations })
}
