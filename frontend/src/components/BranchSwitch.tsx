import { useState } from 'react'
import { deleteVersion, switchVersion } from '../chat/actions'
import { useT } from '../i18n'
import { ChevronLeftIcon, ChevronRightIcon, TrashIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './BranchSwitch.css'

interface Props {
  convId: string
  messageId: string
  /** Which version of the message this is (1-based), of how many: edits and regenerations. */
  version: number
  versions: number
  /** An answer is streaming: the branch shown stays put. */
  busy: boolean
}

/** ‹ 2/3 › under a message with other versions: switches to them and what followed each. */
export function BranchSwitch({ convId, messageId, version, versions, busy }: Props) {
  const t = useT()
  const [confirming, setConfirming] = useState(false)
  if (versions < 2) return null
  if (confirming) {
    return (
      <div className="branch-switch" role="group" aria-label={t('versionsLabel')}>
        <span className="branch-confirm">{t('deleteVersionConfirm')}</span>
        <button type="button" className="btn small" onClick={() => setConfirming(false)}>
          {t('cancel')}
        </button>
        <button
          type="button"
          className="btn small danger"
          disabled={busy}
          onClick={() => {
            setConfirming(false)
            deleteVersion(convId, messageId)
          }}
        >
          {t('delete')}
        </button>
      </div>
    )
  }
  return (
    <div className="branch-switch" role="group" aria-label={t('versionsLabel')}>
      <IconButton
        label={t('previousVersion')}
        small
        disabled={busy || version <= 1}
        onClick={() => switchVersion(convId, messageId, -1)}
      >
        <ChevronLeftIcon />
      </IconButton>
      <span className="branch-count" aria-live="polite">
        {t('versionOf', { n: version, total: versions })}
      </span>
      <IconButton
        label={t('nextVersion')}
        small
        disabled={busy || version >= versions}
        onClick={() => switchVersion(convId, messageId, 1)}
      >
        <ChevronRightIcon />
      </IconButton>
      <IconButton
        label={t('deleteVersion')}
        small
        disabled={busy}
        onClick={() => setConfirming(true)}
      >
        <TrashIcon />
      </IconButton>
    </div>
  )
}
