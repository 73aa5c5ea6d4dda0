import { useState } from 'react'
import { useStore } from 'zustand'
import type { ModelInfo } from '../api/client'
import { defaultSecond, keepAnswer, variantLabel } from '../chat/compare'
import { modelLabel } from '../chat/model'
import { useT } from '../i18n'
import type { Conversation, GenParams, Message, Variant } from '../types'
import { DEFAULT_PARAMS } from '../types'
import { Dialog } from '../ui/Dialog'
import { settingsStore } from '../store/settings'
import { MessageView } from './MessageView'
import './Compare.css'

interface DialogProps {
  open: boolean
  /** The conversation asked in (none yet: a new one, with the default settings). */
  conv: Conversation | undefined
  /** The model the first column uses, and the ones the server lists. */
  model: string
  models: ModelInfo[]
  onAsk: (second: Variant) => void
  onClose: () => void
}

/** Chooses what the second column asks with: a model, temperature, seed and system prompt. */
export function CompareDialog({ open, onClose, ...rest }: DialogProps) {
  const t = useT()
  return (
    <Dialog open={open} title={t('compareTitle')} onClose={onClose}>
      {/* Mounted on opening: the fields start from the conversation's settings each time. */}
      {open && <CompareForm onClose={onClose} {...rest} />}
    </Dialog>
  )
}

function CompareForm({ conv, model, models, onAsk, onClose }: Omit<DialogProps, 'open'>) {
  const t = useT()
  const defaultParams = useStore(settingsStore, (s) => s.defaultParams)
  const own: { params: GenParams; systemPrompt: string } = conv ?? { params: defaultParams ?? DEFAULT_PARAMS, systemPrompt: '' }
  const [first] = useState(() => defaultSecond(own, model, models))
  const [chosen, setChosen] = useState(first.model ?? model)
  const [temperature, setTemperature] = useState(String(first.temperature ?? own.params.temperature))
  const [seed, setSeed] = useState(first.seed == null ? '' : String(first.seed))
  const [systemPrompt, setSystemPrompt] = useState(first.systemPrompt ?? '')
  const options: ModelInfo[] = models.length ? models : [{ id: model }]
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault()
        onAsk({
          model: chosen,
          temperature: Number(temperature),
          seed: seed.trim() === '' ? null : Math.round(Number(seed)),
          systemPrompt,
        })
      }}
    >
      <p className="muted">{t('compareBody')}</p>
      <label className="field">
        <span>{t('model')}</span>
        <select value={chosen} onChange={(e) => setChosen(e.target.value)}>
          {options.map((m) => (
            <option key={m.id} value={m.id}>
              {modelLabel(m, t)}
            </option>
          ))}
        </select>
      </label>
      <div className="grid-2">
        <label className="field">
          <span>{t('temperature')}</span>
          <input type="number" min={0} max={2} step={0.05} required value={temperature} onChange={(e) => setTemperature(e.target.value)} />
        </label>
        <label className="field">
          <span>{t('seed')}</span>
          <input type="number" step={1} min={0} placeholder={t('seedHint')} value={seed} onChange={(e) => setSeed(e.target.value)} />
        </label>
      </div>
      <label className="field">
        <span>{t('systemPrompt')}</span>
        <textarea rows={3} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
      </label>
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          {t('cancel')}
        </button>
        <button type="submit" className="btn primary">
          {t('compareAsk')}
        </button>
      </div>
    </form>
  )
}

/**
 * The compared answers in columns (stacked on phones), each a labelled region headed by its model
 * and settings, with "Keep this one" once both have finished. Like the message list they are not
 * live regions: one polite line says when both are done (the Announcer leaves them alone).
 */
export function CompareColumns({ conv, columns, busy }: { conv: Conversation; columns: Message[]; busy: boolean }) {
  const t = useT()
  return (
    <section className="compare" aria-label={t('compareColumns')}>
      {columns.map((m, i) => {
        const label = t('compareColumn', { n: i + 1, label: variantLabel(m, conv.model, t) })
        return (
          <section key={m.id} className="compare-column" aria-labelledby={`compare-${m.id}`}>
            <h3 className="compare-heading" id={`compare-${m.id}`}>
              {label}
            </h3>
            {/* No ‹ › inside a column: the comparison is the versions' view until one is kept. */}
            <MessageView convId={conv.id} message={m} isLast={false} busy={busy} version={1} versions={1} compared />
            <button type="button" className="btn small compare-keep" disabled={busy} onClick={() => keepAnswer(conv.id, m.id)}>
              {t('compareKeep')}
            </button>
          </section>
        )
      })}
      <p className="visually-hidden" role="status">
        {busy ? '' : t('compareReady')}
      </p>
    </section>
  )
}
