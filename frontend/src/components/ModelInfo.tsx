import { useEffect, useId, useRef, useState } from 'react'
import type { ModelInfo } from '../api/client'
import { loadPercent, modelSize } from '../chat/model'
import { useLanguage, useT } from '../i18n'
import { IconButton } from '../ui/IconButton'
import { InfoIcon } from '../ui/icons'
import './ModelInfo.css'

/**
 * Where a model's load stands, as the server reports it: a progress bar while it loads, why it
 * failed, and `unloaded` (what happens next) for a model not in memory. Nothing once loaded.
 */
export function ModelLoadStatus({ model, unloaded }: { model: ModelInfo | undefined; unloaded: string }) {
  const t = useT()
  if (model?.state === 'loading') {
    const pct = loadPercent(model)
    return (
      <div className="model-load" role="status">
        <progress max={100} value={pct} aria-hidden="true" />
        <span>{t('modelLoadingStatus', { model: model.id, pct })}</span>
      </div>
    )
  }
  if (model?.state === 'unloaded') {
    return (
      <div className="model-load" role="status">
        <span>{unloaded}</span>
      </div>
    )
  }
  if (model?.state === 'failed') {
    return (
      <div className="model-load error-text" role="alert">
        <span>{t('modelFailedStatus', { model: model.id, error: model.error ?? '' })}</span>
      </div>
    )
  }
  return null
}

/** What the server says of a model: context length, parameters, quantisation, capabilities, size. */
export function ModelDetails({ model }: { model: ModelInfo }) {
  const t = useT()
  const lang = useLanguage()
  const count = new Intl.NumberFormat(lang === 'zh' ? 'zh-CN' : 'en', { notation: 'compact', maximumFractionDigits: 1 })
  const rows: [string, string][] = []
  if (model.max_model_len) rows.push([t('detailContext'), t('tokens', { n: model.max_model_len.toLocaleString(lang) })])
  if (model.parameters) rows.push([t('detailParameters'), count.format(model.parameters)])
  if (model.quantization) rows.push([t('detailQuantization'), model.quantization])
  if (model.capabilities?.length) rows.push([t('detailCapabilities'), model.capabilities.join(', ')])
  if (model.size_bytes) rows.push([t('detailSize'), modelSize(model.size_bytes)])
  if (model.memory_bytes) rows.push([t('detailMemory'), modelSize(model.memory_bytes)])
  if (rows.length === 0) return <p className="model-details muted">{t('detailNone')}</p>
  return (
    <dl className="model-details">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  )
}

/** An ⓘ button beside a picker that shows the chosen model's details; Esc or a click elsewhere closes them. */
export function ModelDetailsButton({ model }: { model: ModelInfo | undefined }) {
  const t = useT()
  const [open, setOpen] = useState(false)
  const id = useId()
  const box = useRef<HTMLDivElement>(null)

  useEffect(() => {
    if (!open) return
    const onDown = (e: PointerEvent) => {
      if (!box.current?.contains(e.target as Node)) setOpen(false)
    }
    document.addEventListener('pointerdown', onDown)
    return () => document.removeEventListener('pointerdown', onDown)
  }, [open])

  if (!model) return null
  return (
    <div
      className="model-details-anchor"
      ref={box}
      onKeyDown={(e) => {
        if (e.key !== 'Escape' || !open) return
        // Closes the details only, not the answer (Esc's other job) or a dialog around.
        e.preventDefault()
        e.stopPropagation()
        setOpen(false)
        box.current?.querySelector('button')?.focus()
      }}
    >
      <IconButton
        label={t('modelDetails')}
        aria-expanded={open}
        aria-controls={id}
        onClick={() => setOpen((o) => !o)}
      >
        <InfoIcon />
      </IconButton>
      {open && (
        <div id={id} className="model-details-popover" role="group" aria-label={`${t('modelDetails')}: ${model.id}`}>
          <strong>{model.id}</strong>
          <ModelDetails model={model} />
        </div>
      )}
    </div>
  )
}
