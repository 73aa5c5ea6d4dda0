import { useEffect, useState, type FormEvent } from 'react'
import { useStore } from 'zustand'
import { reason, type ApiKey, type CreatedKey, type UsageReport } from '../api/account'
import { ApiError, apiUrl } from '../api/client'
import { useLanguage, useT } from '../i18n'
import { accountApi, accountStore } from '../store/account'
import { settingsStore } from '../store/settings'
import { CopyButton } from '../ui/CopyButton'
import { Dialog } from '../ui/Dialog'
import { NoteLine, type Note } from '../ui/NoteLine'
import { TableScroll, UsageTable } from './Usage'
import './AdminDialog.css'
import './AccountDialog.css'

const fetchMine = () => Promise.all([accountApi().keys(), accountApi().myUsage()])

/**
 * The signed-in user's own account: personal API keys (listed, made with the secret shown this
 * once, revoked), their password (AUTH=password; with AUTH=header it is the proxy's business)
 * and their usage.
 */
export function AccountDialog() {
  const t = useT()
  const lang = useLanguage()
  const open = useStore(accountStore, (s) => s.accountOpen)
  const auth = useStore(accountStore, (s) => s.auth)
  const apiBaseUrl = useStore(settingsStore, (s) => s.apiBaseUrl)
  const [keys, setKeys] = useState<ApiKey[]>([])
  const [usage, setUsage] = useState<UsageReport | null>(null)
  const [keyName, setKeyName] = useState('')
  const [created, setCreated] = useState<CreatedKey | null>(null)
  const [keyNote, setKeyNote] = useState<Note | null>(null)
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [repeat, setRepeat] = useState('')
  const [passwordNote, setPasswordNote] = useState<Note | null>(null)

  useEffect(() => {
    if (!open) return
    let live = true
    fetchMine().then(
      ([list, report]) => {
        if (!live) return
        setKeys(list)
        setUsage(report)
      },
      (e: unknown) => live && setKeyNote({ text: reason(e), error: true }),
    )
    return () => {
      live = false
    }
  }, [open])

  const close = () => {
    // Nothing secret stays in the page once the dialog is closed.
    setCreated(null)
    setKeyNote(null)
    setPasswordNote(null)
    setCurrent('')
    setNext('')
    setRepeat('')
    accountStore.setState({ accountOpen: false })
  }

  const createKey = async (e: FormEvent) => {
    e.preventDefault()
    setKeyNote(null)
    try {
      const key = await accountApi().createKey(keyName.trim())
      setCreated(key)
      setKeyName('')
      setKeys(await accountApi().keys())
    } catch (err) {
      setKeyNote({ text: reason(err), error: true })
    }
  }

  const revoke = async (key: ApiKey) => {
    if (!confirm(t('confirmRevokeKey', { name: key.name }))) return
    setKeyNote(null)
    try {
      await accountApi().revokeKey(key.id)
      if (created?.id === key.id) setCreated(null)
      setKeyNote({ text: t('keyRevoked', { name: key.name }), error: false })
    } catch (err) {
      setKeyNote({ text: reason(err), error: true })
    }
    // The list as the server has it, also after a refusal (a key revoked elsewhere).
    setKeys(await accountApi().keys().catch(() => keys))
  }

  const changePassword = async (e: FormEvent) => {
    e.preventDefault()
    if (next !== repeat) return setPasswordNote({ text: t('passwordsDiffer'), error: true })
    setPasswordNote(null)
    try {
      await accountApi().changePassword(current, next)
      setCurrent('')
      setNext('')
      setRepeat('')
      setPasswordNote({ text: t('passwordChanged'), error: false })
    } catch (err) {
      // 403 is the wrong current password; anything else (too short…) the server's words.
      const wrong = err instanceof ApiError && err.info.status === 403
      setPasswordNote({ text: wrong ? t('wrongCurrentPassword') : reason(err), error: true })
    }
  }

  const when = (iso: string | null) =>
    iso
      ? new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))
      : t('never')
  const endpoint = new URL(apiUrl(apiBaseUrl, ''), location.href).href

  return (
    <Dialog open={open} title={t('myAccount')} onClose={close}>
      <div className="admin account-dialog">
        <section aria-labelledby="account-keys">
          <h3 id="account-keys">{t('apiKeys')}</h3>
          <p className="muted">{t('apiKeysHelp', { url: endpoint })}</p>
          <NoteLine note={keyNote} />
          {created && (
            <div className="key-created" role="group" aria-label={t('newKeyValue')}>
              <p>
                <strong>{t('keyCreated', { name: created.name })}</strong> {t('keyShownOnce')}
              </p>
              <div className="key-secret">
                <code>{created.key}</code>
                <CopyButton text={created.key} label={t('copyKey')} caption={t('copy')} />
              </div>
              <button type="button" className="btn ghost small" onClick={() => setCreated(null)}>
                {t('keyDone')}
              </button>
            </div>
          )}
          {keys.length === 0 ? (
            <p className="muted">{t('noKeys')}</p>
          ) : (
            <TableScroll label={t('apiKeys')}>
              <table className="admin-table keys-table">
                <thead>
                  <tr>
                    <th>{t('keyName')}</th>
                    <th>{t('keyPrefix')}</th>
                    <th>{t('created')}</th>
                    <th>{t('lastUsed')}</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {keys.map((k) => (
                    <tr key={k.id}>
                      <td>{k.name}</td>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td>{when(k.created_at)}</td>
                      <td>{when(k.last_used_at)}</td>
                      <td>
                        <button
                          type="button"
                          className="btn ghost small"
                          aria-label={`${t('revokeKey')}: ${k.name}`}
                          onClick={() => void revoke(k)}
                        >
                          {t('revokeKey')}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          )}
          <form className="admin-create" onSubmit={(e) => void createKey(e)}>
            <label className="field">
              <span>{t('keyName')}</span>
              <input required maxLength={100} value={keyName} onChange={(e) => setKeyName(e.target.value)} />
            </label>
            <button type="submit" className="btn primary">
              {t('createKey')}
            </button>
          </form>
        </section>
        {auth === 'password' && (
          <section aria-labelledby="account-password">
            <h3 id="account-password">{t('changePassword')}</h3>
            <NoteLine note={passwordNote} />
            <form className="admin-create" onSubmit={(e) => void changePassword(e)}>
              <label className="field">
                <span>{t('currentPassword')}</span>
                <input
                  type="password"
                  autoComplete="current-password"
                  required
                  value={current}
                  onChange={(e) => setCurrent(e.target.value)}
                />
              </label>
              <label className="field">
                <span>{t('newPassword')}</span>
                <input type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
              </label>
              <label className="field">
                <span>{t('repeatPassword')}</span>
                <input
                  type="password"
                  autoComplete="new-password"
                  required
                  value={repeat}
                  onChange={(e) => setRepeat(e.target.value)}
                />
              </label>
              <button type="submit" className="btn primary">
                {t('changePassword')}
              </button>
            </form>
          </section>
        )}
        <section aria-labelledby="account-usage">
          <h3 id="account-usage">{t('myUsage')}</h3>
          {usage && <UsageTable rows={usage.rows} label={t('myUsage')} whoLabel={t('usedWith')} who={(r) => r.key_name ?? t('thePage')} />}
        </section>
      </div>
    </Dialog>
  )
}
