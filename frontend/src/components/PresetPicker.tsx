import { useState, type ReactNode } from 'react'
import { useStore } from 'zustand'
import { useT } from '../i18n'
import { deletePreset, savePreset, settingsStore } from '../store/settings'

/**
 * Named system prompts around the system prompt field (`children`): picking one above fills it;
 * below, the prompt being edited can be added under a name for other conversations.
 */
export function PresetPicker({
  prompt,
  onPick,
  children,
}: {
  prompt: string
  onPick: (prompt: string) => void
  children: ReactNode
}) {
  const t = useT()
  const presets = useStore(settingsStore, (s) => s.presets)
  const [name, setName] = useState('')
  const chosen = presets.find((p) => p.prompt === prompt)?.name ?? ''
  return (
    <>
      <label className="field">
        <span>{t('preset')}</span>
        <select value={chosen} onChange={(e) => onPick(presets.find((p) => p.name === e.target.value)?.prompt ?? '')}>
          <option value="">{t('presetNone')}</option>
          {presets.map((p) => (
            <option key={p.name} value={p.name}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      {children}
      <div className="row">
        {chosen && (
          <button type="button" className="btn small" onClick={() => deletePreset(chosen)}>
            {t('deletePreset')}
          </button>
        )}
        <input
          className="preset-name"
          aria-label={t('presetName')}
          placeholder={t('presetName')}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <button
          type="button"
          className="btn small"
          disabled={!name.trim() || !prompt.trim()}
          onClick={() => {
            savePreset(name.trim(), prompt)
            setName('')
          }}
        >
          {t('savePreset')}
        </button>
      </div>
    </>
  )
}
