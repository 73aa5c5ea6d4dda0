import { useEffect, useState, useSyncExternalStore, type FormEvent } from 'react'
import { useStore } from 'zustand'
import { useT, type MessageKey, type Translate } from '../i18n'
import { contextNumbers } from '../lib/contextNumbers'
import { apiBaseHref, settingsStore, suggestedBaseUrl } from '../store/settings'
import { startNewChat, uiStore } from '../store/ui'
import type { ChatError, ErrorKind } from '../types'
import './ErrorNotice.css'

const TEXT: Record<ErrorKind, { title: MessageKey; help?: MessageKey }> = {
  unreachable: { title: 'errUnreachableTitle', help: 'errUnreachableHelp' },
  not_api: { title: 'errNotApiTitle', help: 'errNotApiHelp' },
  auth: { title: 'errAuthTitle', help: 'errAuthHelp' },
  rate_limit: { title: 'errRateTitle', help: 'errRateHelp' },
  context_length: { title: 'errContextTitle', help: 'errContextHelp' },
  bad_request: { title: 'errBadRequestTitle' },
  server: { title: 'errServerTitle' },
  interrupted: { title: 'errInterruptedTitle', help: 'errInterruptedHelp' },
}

function subscribeOnline(changed: () => void): () => void {
  addEventListener('online', changed)
  addEventListener('offline', changed)
  return () => {
    removeEventListener('online', changed)
    removeEventListener('offline', changed)
  }
}

/** Whether the browser has a network (it says so at once when that changes). */
const useOnline = () => useSyncExternalStore(subscribeOnline, () => navigator.onLine)

/** Seconds left before a 429 may be retried, counting down once a second. */
function useCountdown(seconds: number | undefined): number {
  const [left, setLeft] = useState(seconds ?? 0)
  useEffect(() => {
    if (!seconds) return
    const end = Date.now() + seconds * 1000
    const timer = setInterval(() => {
      const rest = Math.max(0, Math.ceil((end - Date.now()) / 1000))
      setLeft(rest)
      if (rest === 0) clearInterval(timer)
    }, 1000)
    return () => clearInterval(timer)
  }, [seconds])
  return left
}

/** The server's numbers for a request over the context: how much fits, how much was asked. */
function contextText(message: string, t: Translate): string {
  const n = contextNumbers(message)
  if (!n) return message
  const f = (x: number) => x.toLocaleString()
  return n.completion === undefined
    ? t('contextNumbersPrompt', { max: f(n.max), prompt: f(n.prompt) })
    : t('contextNumbers', { max: f(n.max), total: f(n.total), prompt: f(n.prompt), completion: f(n.completion) })
}

/**
 * An error in place of (or under) an answer, saying what to do about it. `onRetry` is given
 * only where retrying makes sense (the last answer, or the model list).
 */
export function ErrorNotice({ error, onRetry }: { error: ChatError; onRetry?: () => void }) {
  const t = useT()
  const online = useOnline()
  // The address as Settings have it now: the notice follows a change made after the error.
  const url = apiBaseHref(useStore(settingsStore, (s) => s.apiBaseUrl))
  const moved = error.baseUrl !== undefined && error.baseUrl !== url
  const offline = error.kind === 'unreachable' && !online
  const text = offline ? { title: 'errOfflineTitle', help: 'errOfflineHelp' } as const : TEXT[error.kind]
  const waitLeft = useCountdown(error.kind === 'rate_limit' ? error.retryAfterS : undefined)
  const [key, setKey] = useState('')

  const saveKey = (e: FormEvent) => {
    e.preventDefault()
    settingsStore.getState().update({ apiKey: key.trim() })
    onRetry?.()
  }

  // Server-written detail is shown only where our own help text does not already say it all (the
  // browser's "Failed to fetch" never does), and not once it is about an address no longer used.
  const detail = (['bad_request', 'server', 'not_api'] as ErrorKind[]).includes(error.kind) && !moved
  const suggestion = error.kind === 'not_api' ? suggestedBaseUrl() : null
  const applySuggestion = (url: string) => {
    settingsStore.getState().update({ apiBaseUrl: url })
    onRetry?.()
  }
  return (
    <div className={`error-notice kind-${error.kind}`} role="alert">
      <p className="error-title">{t(text.title)}</p>
      {error.kind === 'context_length' && error.message && <p className="error-numbers">{contextText(error.message, t)}</p>}
      {moved && (error.kind === 'unreachable' || error.kind === 'not_api') ? (
        <p>{t('errAddressChanged', { old: error.baseUrl ?? '', url })}</p>
      ) : (
        text.help && <p>{t(text.help, { url })}</p>
      )}
      {detail && error.message && <p className="error-detail">{error.message}</p>}
      {error.kind === 'auth' && onRetry ? (
        <form className="row" onSubmit={saveKey}>
          <input
            type="password"
            aria-label={t('apiKey')}
            placeholder={t('apiKey')}
            autoComplete="off"
            value={key}
            onChange={(e) => setKey(e.target.value)}
          />
          <button type="submit" className="btn primary small" disabled={!key.trim()}>
            {t('saveKeyAndRetry')}
          </button>
        </form>
      ) : (
        onRetry && (
          <div className="row">
            <button type="button" className="btn small" disabled={waitLeft > 0} onClick={onRetry}>
              {waitLeft > 0 ? t('errRateWait', { n: waitLeft }) : t('retry')}
            </button>
            {suggestion && (
              <button type="button" className="btn primary small" onClick={() => applySuggestion(suggestion)}>
                {t('useUrl', { url: suggestion })}
              </button>
            )}
            {(error.kind === 'unreachable' || error.kind === 'not_api') && (
              <button type="button" className="btn small" onClick={() => uiStore.setState({ settingsOpen: true })}>
                {t('openSettings')}
              </button>
            )}
            {error.kind === 'context_length' && (
              <button type="button" className="btn small" onClick={startNewChat}>
                {t('newChat')}
              </button>
            )}
          </div>
        )
      )}
    </div>
  )
}
