import { useState, type FormEvent } from 'react'
import { useStore } from 'zustand'
import { ApiError } from '../api/client'
import { useT, type Translate } from '../i18n'
import { accountStore, signIn } from '../store/account'
import './SignIn.css'

/** What the page says of a refused sign-in: the wrong password, the wait, a closed sign-up. */
function refusal(e: unknown, t: Translate): string {
  if (!(e instanceof ApiError)) return t('signInFailed', { reason: e instanceof Error ? e.message : String(e) })
  const { status, retryAfterS, message } = e.info
  if (status === 401) return t('signInWrong')
  if (status === 429) return t('signInThrottled', { n: retryAfterS ?? 60 })
  if (status === 403) return t('signUpClosed')
  // Bad input (a short password, a taken name): the server's message says what to fix.
  return t('signInFailed', { reason: message })
}

/**
 * The page with AUTH=header when the request did not come through the sign-in proxy (no user):
 * there is nothing to fill in here, only where to go.
 */
export function NotSignedIn() {
  const t = useT()
  return (
    <main className="signin">
      <div className="signin-card form">
        <h1>
          <span className="brand-mark" aria-hidden="true" />
          {t('proxyTitle')}
        </h1>
        <p>{t('proxyHelp')}</p>
        <button type="button" className="btn primary" onClick={() => location.reload()}>
          {t('reload')}
        </button>
      </div>
    </main>
  )
}

/** The page before anything else with AUTH=password: sign in, or create the first (admin) account. */
export function SignIn() {
  const t = useT()
  const firstAccount = useStore(accountStore, (s) => s.signupOpen)
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState('')
  const [busy, setBusy] = useState(false)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError('')
    try {
      await signIn(username.trim(), password, firstAccount)
    } catch (err) {
      setError(refusal(err, t))
      // Sign-up closed meanwhile (someone else was first): show the sign-in form.
      if (err instanceof ApiError && err.info.status === 403) accountStore.setState({ signupOpen: false })
    } finally {
      setBusy(false)
    }
  }

  return (
    <main className="signin">
      <form className="signin-card form" onSubmit={(e) => void submit(e)} aria-busy={busy}>
        <h1>
          <span className="brand-mark" aria-hidden="true" />
          {firstAccount ? t('signUpTitle') : t('signInTitle', { app: t('appName') })}
        </h1>
        {firstAccount && <p className="muted">{t('signUpHelp')}</p>}
        <label className="field">
          <span>{t('username')}</span>
          <input
            name="username"
            autoComplete="username"
            required
            autoFocus
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
        </label>
        <label className="field">
          <span>{t('password')}</span>
          <input
            name="password"
            type="password"
            autoComplete={firstAccount ? 'new-password' : 'current-password'}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <p className="signin-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="btn primary" disabled={busy}>
          {firstAccount ? t('signUp') : t('signIn')}
        </button>
      </form>
    </main>
  )
}
