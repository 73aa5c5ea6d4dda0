import type { FormEvent, ReactNode } from 'react'
import { useT } from '../i18n'
import './form.css'

/** A settings form with the footer every dialog shares: Cancel closes without saving, Save submits. */
export function Form({
  onSubmit,
  onCancel,
  children,
}: {
  onSubmit: () => void
  onCancel: () => void
  children: ReactNode
}) {
  const t = useT()
  const submit = (e: FormEvent) => {
    e.preventDefault()
    onSubmit()
  }
  return (
    <form className="form" onSubmit={submit}>
      {children}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onCancel}>
          {t('cancel')}
        </button>
        <button type="submit" className="btn primary">
          {t('save')}
        </button>
      </div>
    </form>
  )
}
