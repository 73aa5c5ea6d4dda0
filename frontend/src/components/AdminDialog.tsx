import { useEffect, useState, type FormEvent } from 'react'
import { useStore } from 'zustand'
import { reason, type UsageReport, type User } from '../api/account'
import { useT } from '../i18n'
import { accountApi, accountStore } from '../store/account'
import { Dialog } from '../ui/Dialog'
import { NoteLine, type Note } from '../ui/NoteLine'
import { UsageChart, UsageTable } from './Usage'
import './AdminDialog.css'

const fetchAdminData = () => Promise.all([accountApi().users(), accountApi().usage()])

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
  const [message, setMessage] = useState<Note | null>(null)
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

  /** A limit as the table shows it: null is USER_RPM / USER_TOKENS_PER_DAY, 0 none. */
  const limitText = (value: number | null, unit: string) =>
    value === null ? t('limitsDefault') : value === 0 ? t('limitsNone') : `${value.toLocaleString()} ${unit}`

  return (
    <Dialog open={open} title={t('adminTitle')} onClose={() => accountStore.setState({ adminOpen: false })}>
      <div className="admin">
        <NoteLine note={message} />
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
          {usage && (
            <UsageTable
              rows={usage.rows}
              label={t('usage')}
              whoLabel={t('user')}
              who={(r) => `${r.username ?? 'API_KEY'}${r.key_name ? ` (${r.key_name})` : ''}`}
            />
          )}
        </section>
      </div>
    </Dialog>
  )
}
