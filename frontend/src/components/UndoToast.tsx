import { useEffect } from 'react'
import { useStore } from 'zustand'
import { useT } from '../i18n'
import { undoStore } from '../store/ui'
import { CloseIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './UndoToast.css'

/** How long Undo is offered. */
const SHOW_MS = 8000

/** "Deleted “…” · Undo" at the bottom of the page for a few seconds (a polite live region). */
export function UndoToast() {
  const t = useT()
  const notice = useStore(undoStore, (s) => s.notice)
  const dismiss = () => undoStore.setState({ notice: null })
  useEffect(() => {
    if (!notice) return
    const timer = setTimeout(() => {
      if (undoStore.getState().notice?.id === notice.id) undoStore.setState({ notice: null })
    }, SHOW_MS)
    return () => clearTimeout(timer)
  }, [notice])
  return (
    <div className="toast-region" role="status">
      {notice && (
        <div className="toast">
          <span className="toast-text">{notice.text}</span>
          <button
            type="button"
            className="btn small"
            onClick={() => {
              notice.undo()
              dismiss()
            }}
          >
            {t('undo')}
          </button>
          <IconButton label={t('close')} small onClick={dismiss}>
            <CloseIcon />
          </IconButton>
        </div>
      )}
    </div>
  )
}
