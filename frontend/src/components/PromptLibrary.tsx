import { useState } from 'react'
import { useStore } from 'zustand'
import { useT } from '../i18n'
import { deletePrompt, savePrompt, settingsStore } from '../store/settings'
import { IconButton } from '../ui/IconButton'
import { EditIcon, TrashIcon } from '../ui/icons'

/** Saved prompts, inserted by typing `/` in the message box: added, edited and deleted here (at once). */
export function PromptLibrary() {
  const t = useT()
  const prompts = useStore(settingsStore, (s) => s.prompts)
  // The prompt being edited (its name as saved), or null when adding one.
  const [editing, setEditing] = useState<string | null>(null)
  const [name, setName] = useState('')
  const [text, setText] = useState('')

  const reset = () => {
    setEditing(null)
    setName('')
    setText('')
  }
  const save = () => {
    savePrompt(name.trim(), text, editing ?? undefined)
    reset()
  }

  return (
    <fieldset>
      <legend>{t('promptLibrary')}</legend>
      <small className="muted">{t('promptLibraryHint')}</small>
      {prompts.length === 0 ? (
        <p className="muted">{t('noPrompts')}</p>
      ) : (
        <ul className="prompt-library">
          {prompts.map((p) => (
            <li key={p.name}>
              <div>
                <strong>{p.name}</strong>
                <span className="muted">{p.text}</span>
              </div>
              <IconButton
                small
                label={t('editPrompt', { name: p.name })}
                onClick={() => {
                  setEditing(p.name)
                  setName(p.name)
                  setText(p.text)
                }}
              >
                <EditIcon />
              </IconButton>
              <IconButton
                small
                label={t('deletePromptNamed', { name: p.name })}
                onClick={() => {
                  deletePrompt(p.name)
                  if (editing === p.name) reset()
                }}
              >
                <TrashIcon />
              </IconButton>
            </li>
          ))}
        </ul>
      )}
      <label className="field">
        <span>{t('promptName')}</span>
        <input type="text" value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} />
      </label>
      <label className="field">
        <span>{t('promptText')}</span>
        <textarea rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      <div className="row">
        <button type="button" className="btn small" disabled={!name.trim() || !text.trim()} onClick={save}>
          {editing === null ? t('addPrompt') : t('updatePrompt')}
        </button>
        {editing !== null && (
          <button type="button" className="btn small ghost" onClick={reset}>
            {t('cancel')}
          </button>
        )}
      </div>
    </fieldset>
  )
}
