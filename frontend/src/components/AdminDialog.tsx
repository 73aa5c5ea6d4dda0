import { useEffect, useState, type FormEvent } from 'react'
import { useStore } from 'zustand'
import type { UsageReport, User } from '../api/account'
import { ApiError } from '../api/client'
import { useT } from '../i18n'
import { accountApi, accountStore } from '../store/account'
import { Dialog } from '../ui/Dialog'
import './AdminDialog.css'

const reason = (e: unknown) => (e instanceof ApiError ? e.info.message : e instanceof Error ? e.message : String(e))

const fetchAdminData = () => Promise.all([accountApi().users(), accountApi().usage()])

/** Tokens per day as bars (SVG: no charting library for one small chart). */
function UsageChart({ daily, label }: { daily: UsageReport['daily']; label: string }) {
  const width = 600
  const height = 120
  const max = Math.max(1, ...daily.map((d) => d.total_tokens))
  const bar = width / Math.max(1, daily.length)
  return (
    <figure className="usage-chart">
      <svg viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label={label}>
        {daily.map((d, i) => {
          const h = (d.total_tokens / max) * height
          return (
            <rect key={d.day} x={i * bar + 1} y={height - h} width={Math.max(1, bar - 2)} height={h}>
              <title>{`${d.day}: ${d.total_tokens}`}</title>
            </rect>
          )
        })}
        <line x1="0" x2={width} y1={height} y2={height} />
        <text x="0" y={height + 13}>
          {daily[0]?.day}
        </text>
        <text x={width} y={height + 13} textAnchor="end">
          {daily.at(-1)?.day}
        </text>
        <text x="2" y="11">
          {max}
        </text>
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  )
}

/** A user's own limits; an empty field goes back to the server's default (null). */
function LimitsForm({
  user,
  onSave,
  onCancel,
}: {
  user: User
  onSave: (user: User, limits: Pick<User, 'rpm_limit' | 'tokens_per_day_limit'>) => void
  onCancel: () => void
}) {
  const t = useT()
  const [rpm, setRpm] = useState(user.rpm_limit?.toString() ?? '')
  const [tokens, setTokens] = useState(user.tokens_per_day_limit?.toString() ?? '')
  const value = (text: string) => (text.trim() === '' ? null : Number(text))
  const submit = (e: FormEvent) => {
    e.preventDefault()
    onSave(user, { rpm_limit: value(rpm), tokens_per_day_limit: value(tokens) })
  }
  return (
    <form className="admin-create admin-limits-form" aria-label={t('limitsFor', { name: user.username })} onSubmit={submit}>
      <label className="field">
        <span>{t('rpmLimit')}</span>
        <input type="number" min={0} step={1} value={rpm} placeholder={t('limitsDefault')} onChange={(e) => setRpm(e.target.value)} />
      </label>
      <label className="field">
        <span>{t('tokensPerDayLimit')}</span>
        <input
          type="number"
          min={0}
          step={1}
          value={tokens}
          placeholder={t('limitsDefault')}
          onChange={(e) => setTokens(e.target.value)}
        />
      </label>
      <p className="muted admin-hint">{t('limitsHint')}</p>
      <button type="submit" className="btn primary">
        {t('save')}
      </button>
      <button type="button" className="btn ghost" onClick={onCancel}>
        {t('cancel')}
      </button>
    </form>
  )
}

/** The admin page: users (create, disable or enable, role, reset the password, delete) and usage. */
export function AdminDialog() {
  const t = useT()
  const open = useStore(accountStore, (s) => s.adminOpen)
  const me = useStore(accountStore, (s) => s.user)
  const [users, setUsers] = useState<User[]>([])
  const [usage, setUsage] = useState<UsageReport | null>(null)
  // What the last action did, or why the server refused it.
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null)
  const [newName, setNewName] = useState('')
  const [newPassword, setNewPassword] = useState('')
  const [newRole, setNewRole] = useState<User['role']>('user')
  const [editing, setEditing] = useState<User | null>(null)

  const reload = async () => {
    const [list, report] = await fetchAdminData()
    setUsers(list)
    setUsage(report)
  }

  useEffect(() => {
    if (!open) return
    let live = true
    fetchAdminData().then(
      ([list, report]) => {
        if (!live) return
        setUsers(list)
        setUsage(report)
      },
      (e: unknown) => live && setMessage({ text: reason(e), error: true }),
    )
    return () => {
      live = false
    }
  }, [open])

  /** Runs an admin action, then shows the list as the server has it; a refusal says why. */
  const act = async (fn: () => Promise<unknown>, done = '') => {
    setMessage(null)
    try {
      await fn()
      setMessage(done ? { text: done, error: false } : null)
      await reload()
    } catch (e) {
      setMessage({ text: reason(e), error: true })
    }
  }

  const create = (e: FormEvent) => {
    e.preventDefault()
    void act(async () => {
      await accountApi().createUser({ username: newName.trim(), password: newPassword, role: newRole })
      setNewName('')
      setNewPassword('')
    })
  }

  const resetPassword = (user: User) => {
    const password = prompt(t('newPasswordFor', { name: user.username }))
    if (password) void act(() => accountApi().updateUser(user.id, { password }), t('passwordReset', { name: user.username }))
  }

  const saveLimits = (user: User, limits: Pick<User, 'rpm_limit' | 'tokens_per_day_limit'>) =>
    void act(async () => {
      await accountApi().updateUser(user.id, limits)
      setEditing(null)
    }, t('limitsSaved', { name: user.username }))

  const remove = (user: User) => {
    if (confirm(t('confirmDeleteUser', { name: user.username }))) void act(() => accountApi().deleteUser(user.id))
  }

  const rows = usage ? [...usage.rows].sort((a, b) => b.day.localeCompare(a.day)) : []

  /** A limit as the table shows it: null is USER_RPM / USER_TOKENS_PER_DAY, 0 none. */
  const limitText = (value: number | null, unit: string) =>
    value === null ? t('limitsDefault') : value === 0 ? t('limitsNone') : `${value.toLocaleString()} ${unit}`

  return (
    <Dialog open={open} title={t('adminTitle')} onClose={() => accountStore.setState({ adminOpen: false })}>
      <div className="admin">
        {message && (
          <p className={message.error ? 'admin-message' : 'admin-message done'} role={message.error ? 'alert' : 'status'}>
            {message.text}
          </p>
        )}
        <section>
          <h3>{t('users')}</h3>
          <table className="admin-table">
            <thead>
              <tr>
                <th>{t('username')}</th>
                <th>{t('role')}</th>
                <th>{t('status')}</th>
                <th>{t('limits')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.id}>
                  <td>{u.username}</td>
                  <td>{u.role === 'admin' ? t('roleAdmin') : t('roleUser')}</td>
                  <td>{u.disabled ? t('disabled') : t('active')}</td>
                  <td className="admin-limits">
                    {limitText(u.rpm_limit, '/ min')}
                    <br />
                    {limitText(u.tokens_per_day_limit, '/ day')}
                  </td>
                  <td>
                    <div className="admin-actions">
                    <button
                      type="button"
                      className="btn ghost small"
                      aria-label={`${u.disabled ? t('enable') : t('disable')}: ${u.username}`}
                      onClick={() => void act(() => accountApi().updateUser(u.id, { disabled: !u.disabled }))}
                    >
                      {u.disabled ? t('enable') : t('disable')}
                    </button>
                    <button
                      type="button"
                      className="btn ghost small"
                      aria-label={`${u.role === 'admin' ? t('makeUser') : t('makeAdmin')}: ${u.username}`}
                      onClick={() =>
                        void act(() => accountApi().updateUser(u.id, { role: u.role === 'admin' ? 'user' : 'admin' }))
                      }
                    >
                      {u.role === 'admin' ? t('makeUser') : t('makeAdmin')}
                    </button>
                    <button
                      type="button"
                      className="btn ghost small"
                      aria-label={`${t('resetPassword')}: ${u.username}`}
                      onClick={() => resetPassword(u)}
                    >
                      {t('resetPassword')}
                    </button>
                    <button
                      type="button"
                      className="btn ghost small"
                      aria-label={t('limitsOf', { name: u.username })}
                      aria-expanded={editing?.id === u.id}
                      onClick={() => setEditing(editing?.id === u.id ? null : u)}
                    >
                      {t('limits')}
                    </button>
                    {u.id !== me?.id && (
                      <button type="button" className="btn ghost small" onClick={() => remove(u)}>
                        {t('deleteUser', { name: u.username })}
                      </button>
                    )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {editing && <LimitsForm key={editing.id} user={editing} onSave={saveLimits} onCancel={() => setEditing(null)} />}
          <form className="admin-create" onSubmit={create}>
            <label className="field">
              <span>{t('username')}</span>
              <input required value={newName} onChange={(e) => setNewName(e.target.value)} />
            </label>
            <label className="field">
              <span>{t('password')}</span>
              <input
                type="password"
                autoComplete="new-password"
                required
                value={newPassword}
                onChange={(e) => setNewPassword(e.target.value)}
              />
            </label>
            <label className="field">
              <span>{t('role')}</span>
              <select value={newRole} onChange={(e) => setNewRole(e.target.value as User['role'])}>
                <option value="user">{t('roleUser')}</option>
                <option value="admin">{t('roleAdmin')}</option>
              </select>
            </label>
            <button type="submit" className="btn primary">
              {t('createUser')}
            </button>
          </form>
        </section>
        <section>
          <h3>{t('usage')}</h3>
          {usage && <UsageChart daily={usage.daily} label={t('usageChart')} />}
          {rows.length === 0 ? (
            <p className="muted">{t('noUsage')}</p>
          ) : (
            <table className="admin-table usage-table">
              <thead>
                <tr>
                  <th>{t('day')}</th>
                  <th>{t('user')}</th>
                  <th>{t('model')}</th>
                  <th>{t('requests')}</th>
                  <th>{t('promptTokens')}</th>
                  <th>{t('completionTokens')}</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={`${r.day}/${r.user_id}/${r.api_key_id}/${r.model}`}>
                    <td>{r.day}</td>
                    <td>{r.username ?? 'API_KEY'}{r.key_name ? ` (${r.key_name})` : ''}</td>
                    <td>{r.model}</td>
                    <td>{r.requests}</td>
                    <td>{r.prompt_tokens}</td>
                    <td>{r.completion_tokens}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </Dialog>
  )
}
