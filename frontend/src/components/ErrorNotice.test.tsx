// @vitest-environment happy-dom
import { act } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { settingsStore } from '../store/settings'
import type { ChatError } from '../types'
import { ErrorNotice } from './ErrorNotice'
import { mountPoint } from '../testing/mount'

const mount = mountPoint()

function render(error: ChatError, onRetry = vi.fn()) {
  mount.render(<ErrorNotice error={error} onRetry={onRetry} />)
  return onRetry
}

const button = (name: string) =>
  [...mount.container.querySelectorAll('button')].find((b) => b.textContent === name) as HTMLButtonElement | undefined

describe('ErrorNotice', () => {
  beforeEach(() => {
    settingsStore.getState().update({ language: 'en', apiKey: '' })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('429: says the server is busy and enables Retry after Retry-After seconds', () => {
    vi.useFakeTimers()
    const onRetry = render({ kind: 'rate_limit', message: 'Queue full', status: 429, retryAfterS: 2 })
    expect(mount.container.textContent).toContain('The server is busy')
    expect(button('Retry in 2 s')?.disabled).toBe(true)
    act(() => vi.advanceTimersByTime(1000))
    expect(button('Retry in 1 s')?.disabled).toBe(true)
    act(() => vi.advanceTimersByTime(1000))
    const retry = button('Retry')
    expect(retry?.disabled).toBe(false)
    act(() => retry?.click())
    expect(onRetry).toHaveBeenCalledOnce()
  })

  it('401: asks for the key, saves it and retries', () => {
    const onRetry = render({ kind: 'auth', message: 'Incorrect API key', status: 401 })
    const input = mount.container.querySelector<HTMLInputElement>('input[aria-label="API key"]')
    expect(input?.type).toBe('password')
    act(() => {
      const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set
      setValue?.call(input, ' secret ')
      input?.dispatchEvent(new Event('input', { bubbles: true }))
    })
    act(() => button('Save key & retry')?.click())
    expect(settingsStore.getState().apiKey).toBe('secret')
    expect(onRetry).toHaveBeenCalledOnce()
  })

  it('a web page where the API should be: says so and offers the base URL with /v1', () => {
    settingsStore.getState().update({ apiBaseUrl: 'http://h:8000/' })
    const onRetry = render({ kind: 'not_api', message: 'http://h:8000/models answered HTTP 200 with text/html', status: 200 })
    expect(mount.container.textContent).toContain('This address is not the API')
    expect(mount.container.textContent).toContain('under /v1')
    act(() => button('Use http://h:8000/v1')?.click())
    expect(settingsStore.getState().apiBaseUrl).toBe('http://h:8000/v1')
    expect(onRetry).toHaveBeenCalledOnce()
    // Already /v1 (or this site's own): nothing to suggest.
    render({ kind: 'not_api', message: 'x', status: 200 })
    expect(mount.container.textContent).not.toContain('Use http')
    settingsStore.getState().update({ apiBaseUrl: '' })
  })

  it('context too long: explains what to do and offers a new chat', () => {
    render({ kind: 'context_length', message: 'too long', status: 400 })
    expect(mount.container.textContent).toContain('too long for the model')
    expect(mount.container.textContent).toContain('lower Max tokens')
    expect(button('New chat')).toBeDefined()
  })

  it('shows no Retry where retrying is not offered (an older answer)', () => {
    mount.render(<ErrorNotice error={{ kind: 'server', message: 'boom' }} />)
    expect(mount.container.textContent).toContain('boom')
    expect(mount.container.querySelector('button')).toBeNull()
  })

  it('unreachable: says what to do at the address Settings use now, never the browser\'s raw message', () => {
    settingsStore.getState().update({ apiBaseUrl: 'http://127.0.0.1:9/v1' })
    const error: ChatError = { kind: 'unreachable', message: 'Failed to fetch', baseUrl: 'http://127.0.0.1:9/v1' }
    render(error)
    expect(mount.container.textContent).toContain('Nothing answered at http://127.0.0.1:9/v1.')
    expect(mount.container.textContent).not.toContain('Failed to fetch')
    expect(mount.container.textContent).not.toContain('make run')
    // Settings changed after the error: the notice follows, naming both addresses.
    act(() => settingsStore.getState().update({ apiBaseUrl: 'http://127.0.0.1:8000/v1' }))
    expect(mount.container.textContent).toContain(
      'This happened at http://127.0.0.1:9/v1. Settings now use http://127.0.0.1:8000/v1: retry to ask there.',
    )
    // Offline: said as such, and the notice follows the network coming back.
    const onLine = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false)
    act(() => void dispatchEvent(new Event('offline')))
    expect(mount.container.textContent).toContain('You are offline')
    onLine.mockReturnValue(true)
    act(() => void dispatchEvent(new Event('online')))
    expect(mount.container.textContent).toContain('Can’t reach the server')
    onLine.mockRestore()
    settingsStore.getState().update({ apiBaseUrl: '' })
  })
})
