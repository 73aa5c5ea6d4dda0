import { useState } from 'react'
import { useStore } from 'zustand'
import { useT } from '../i18n'
import { accountStore, importLocalHistory, keepLocalHistory, signOut } from '../store/account'
import './AccountMenu.css'

/**
 * Who is signed in (AUTH=password or header), how the sync stands, their own account (keys,
 * password, usage), Admin for admins and Sign out (with AUTH=header one signs out at the proxy); the offer to import this browser's history.
 */
export function AccountMenu() {
  const t = useT()
  const user = useStore(accountStore, (s) => s.user)
  const auth = useStore(accountStore, (s) => s.auth)
  const sync = useStore(accountStore, (s) => s.sync)
  const offer = useStore(accountStore, (s) => s.offer)
  const [notice, setNotice] = useState('')
  if (!user) return null

  const syncText =
    sync?.kind === 'syncing'
      ? t('syncing')
      : sync?.kind === 'synced'
        ? t('synced')
        : sync?.kind === 'offline'
          ? t('syncOffline', { reason: sync.message })
          : ''
  const importNow = async () => {
    try {
      const { imported } = await importLocalHistory()
      setNotice(t('importDone', { n: imported }))
    } catch (e) {
      setNotice(t('syncOffline', { reason: e instanceof Error ? e.message : String(e) }))
    }
  }

  return (
    <section className="account" aria-label={t('signedInAs', { name: user.username })}>
      {offer > 0 && (
        <div className="account-offer" role="status">
          <p>{t('importOffer', { n: offer })}</p>
          <button type="button" className="btn primary small" onClick={() => void importNow()}>
            {t('importYes')}
          </button>
          <button type="button" className="btn ghost small" onClick={keepLocalHistory}>
            {t('importNo')}
          </button>
        </div>
      )}
      {notice && (
        <p className="account-notice" role="status">
          {notice}
        </p>
      )}
      <div className="account-row">
        <span className="account-user" title={user.email ?? user.username}>
          {t('signedInAs', { name: user.username })}
        </span>
        <span className="account-sync muted" role="status">
          {syncText}
        </span>
      </div>
      <div className="account-row">
        <button type="button" className="btn ghost small" onClick={() => accountStore.setState({ accountOpen: true })}>
          {t('myAccount')}
        </button>
        {user.role === 'admin' && (
          <button type="button" className="btn ghost small" onClick={() => accountStore.setState({ adminOpen: true })}>
            {t('admin')}
          </button>
        )}
        {auth === 'password' && (
          <button type="button" className="btn ghost small" onClick={() => void signOut()}>
            {t('signOut')}
          </button>
        )}
      </div>
    </section>
  )
}
