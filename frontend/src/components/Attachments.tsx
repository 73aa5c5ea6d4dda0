import { formatSize } from '../documents/extract'
import { useT } from '../i18n'
import type { Attachment } from '../types'
import { CloseIcon, FileIcon, PaperclipIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './Attachments.css'

// Images too, so that refusing one (for a model without vision) can say why.
const ACCEPT = '.txt,.md,.markdown,.csv,.json,.yaml,.yml,.toml,.xml,.html,.css,.log,.py,.js,.jsx,.ts,.tsx,.java,.c,.h,.cpp,.hpp,.cs,.go,.rs,.rb,.php,.sh,.sql,.swift,.kt,.pdf,text/*,application/pdf,image/*'

/**
 * The paperclip: picks files to attach. Its file input is made on click rather than kept in the
 * page, where the sidebar's Import has one.
 */
export function AttachButton({ onFiles, disabled }: { onFiles: (files: File[]) => void; disabled?: boolean }) {
  const t = useT()
  const pick = () => {
    const input = document.createElement('input')
    input.type = 'file'
    input.multiple = true
    input.accept = ACCEPT
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])]
      if (files.length) onFiles(files)
    })
    input.click()
  }
  return (
    <IconButton
      label={t('attachFiles')}
      className="attach-btn"
      disabled={disabled}
      onClick={pick}
    >
      <PaperclipIcon />
    </IconButton>
  )
}

/** Chips with each file's name and size; removable while the message is being written. */
export function AttachmentChips({ items, onRemove }: { items: readonly Attachment[]; onRemove?: (id: string) => void }) {
  const t = useT()
  if (items.length === 0) return null
  return (
    <ul className="attachments" aria-label={t('attachedFiles')}>
      {items.map((a) => (
        <li key={a.id} className="attachment-chip" title={a.name}>
          {a.dataUrl ? <img className="attachment-thumb" src={a.dataUrl} alt="" /> : <FileIcon />}
          <span className="attachment-name">{a.name}</span>
          <span className="attachment-size">{formatSize(a.size)}</span>
          {onRemove && (
            <IconButton
              label={t('removeAttachment', { name: a.name })}
              small
              onClick={() => onRemove(a.id)}
            >
              <CloseIcon />
            </IconButton>
          )}
        </li>
      ))}
    </ul>
  )
}
