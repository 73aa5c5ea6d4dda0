import { afterEach, describe, expect, it, vi } from 'vitest'
import { savedConversation } from '../testing/conversations'
import { AccountApi, Conflict, reason, serverRoot } from './account'
import { ApiError } from './client'

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })

describe('the account routes', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('finds /auth and /api beside the API base URL', () => {
    expect(serverRoot('')).toBe('')
    expect(serverRoot('/v1')).toBe('')
    expect(serverRoot('http://host:8000/v1/')).toBe('http://host:8000')
  })

  it('a 409 carries the server copy; other errors are the API’s, with Retry-After', async () => {
    const current = { id: 'c', version: 3, deleted: false, conversation: savedConversation('c', []) }
    const fetch = vi.fn<typeof globalThis.fetch>()
    vi.stubGlobal('fetch', fetch)
    fetch.mockResolvedValueOnce(json(409, { error: { message: 'stale', type: 'invalid_request_error' }, current }))
    const api = new AccountApi('')
    const conflict = await api.put(savedConversation('c', []), 2).catch((e: unknown) => e)
    expect(conflict).toBeInstanceOf(Conflict)
    expect((conflict as Conflict).current).toEqual(current)
    expect(JSON.parse(String(fetch.mock.calls[0]?.[1]?.body))).toMatchObject({ base_version: 2 })

    fetch.mockResolvedValueOnce(
      json(429, { error: { message: 'Too many failed sign-ins; try again in 7 s.', code: 'too_many_attempts' } }, { 'Retry-After': '7' }),
    )
    const throttled = await api.logIn('a', 'b').catch((e: unknown) => e)
    expect(throttled).toBeInstanceOf(ApiError)
    expect((throttled as ApiError).info).toMatchObject({ status: 429, retryAfterS: 7 })
  })

  it('one’s own password and keys: the bodies the routes take, a refusal in the server’s words', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>()
    vi.stubGlobal('fetch', fetch)
    const api = new AccountApi('')
    fetch.mockResolvedValueOnce(new Response(null, { status: 204 }))
    await api.changePassword('old one', 'new one!')
    expect(fetch.mock.calls[0]?.[0]).toBe('/auth/password')
    expect(JSON.parse(String(fetch.mock.calls[0]?.[1]?.body))).toEqual({ current_password: 'old one', new_password: 'new one!' })
    const wrong = { error: { message: 'The current password is wrong.', type: 'invalid_request_error', param: 'current_password', code: 'wrong_password' } }
    fetch.mockResolvedValueOnce(json(403, wrong))
    expect(reason(await api.changePassword('x', 'new one!').catch((e: unknown) => e))).toBe('The current password is wrong.')
    fetch.mockResolvedValueOnce(new Response(null, { status: 204 }))
    await api.revokeKey(7)
    expect(fetch.mock.calls[2]?.[0]).toBe('/auth/keys/7')
    expect(fetch.mock.calls[2]?.[1]?.method).toBe('DELETE')
  })

  it('a server without accounts (AUTH=none: a 404) or one that is down is a single local user', async () => {
    vi.stubGlobal('fetch', vi.fn<typeof globalThis.fetch>().mockResolvedValueOnce(json(404, { error: { message: 'no' } })))
    expect(await new AccountApi('').status()).toEqual({ auth: 'none', user: null, signup_open: false })
    vi.stubGlobal('fetch', vi.fn<typeof globalThis.fetch>().mockRejectedValueOnce(new TypeError('Failed to fetch')))
    expect((await new AccountApi('').status()).auth).toBe('none')
  })
})
