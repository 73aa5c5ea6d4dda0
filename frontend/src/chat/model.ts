import { ApiError, type ModelInfo } from '../api/client'
import { formatSize } from '../documents/extract'
import type { Translate } from '../i18n'
import { chatStore } from '../store/conversations'
import { modelsStore, refreshModels } from '../store/models'
import { settingsStore } from '../store/settings'
import type { Conversation } from '../types'

/**
 * The model an answer uses: the conversation's, else the last one chosen, as long as the server
 * lists it; else the server's first. Before the list has loaded, a named model is tried as is.
 */
export function resolveModel(preferred: string[], listed: ModelInfo[]): string {
  const named = preferred.filter(Boolean)
  if (listed.length === 0) return named[0] ?? ''
  return named.find((id) => listed.some((m) => m.id === id)) ?? listed[0]?.id ?? ''
}

/**
 * The model that embeds documents: the one chosen in Settings while the server lists it, else the
 * server's first; `gone` names a chosen model the server no longer lists (for a notice).
 */
export function resolveEmbeddingModel(chosen: string, listed: ModelInfo[]): { model: ModelInfo | undefined; gone: string | null } {
  const model = listed.find((m) => m.id === chosen)
  return model ? { model, gone: null } : { model: listed[0], gone: chosen || null }
}

/**
 * Whether the conversation's model can carry on a cut answer in place: this server lists
 * `continue_final_message` (vLLM's request field) among the model's capabilities. Servers that
 * do not say so are not sent it, since some ignore unknown fields and would answer afresh.
 */
export async function offersContinue(conv: Conversation): Promise<boolean> {
  let listed = modelsStore.getState().models
  if (listed.length === 0) listed = await refreshModels().catch(() => [])
  const id = resolveModel([conv.model, settingsStore.getState().lastModel], listed)
  return listed.find((m) => m.id === id)?.capabilities?.includes('continue_final_message') ?? false
}

/** Whether a model takes images: only when the server says so (`vision` in its capabilities). */
export function acceptsImages(model: ModelInfo | undefined): boolean {
  return model?.capabilities?.includes('vision') ?? false
}

/** Resolves the conversation's model (loading the list if nothing is known yet) and records it. */
export async function pickModel(conv: Conversation): Promise<string> {
  const { lastModel } = settingsStore.getState()
  let listed = modelsStore.getState().models
  if (listed.length === 0 && !conv.model && !lastModel) listed = await refreshModels()
  const id = resolveModel([conv.model, lastModel], listed)
  if (!id) throw new ApiError({ kind: 'server', message: 'The server lists no chat model' })
  if (id !== conv.model) chatStore.getState().patch(conv.id, { model: id })
  settingsStore.getState().update({ lastModel: id })
  return id
}

/** A model's size on disk, as people read model files: GB from one gigabyte up. */
export function modelSize(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : formatSize(bytes)
}

/** Percent of a load done, from the server's 0..1 progress. */
export function loadPercent(model: ModelInfo): number {
  return Math.floor((model.progress ?? 0) * 100)
}

/**
 * The picker's line for a model: its name, then on a server that reports them its size and,
 * unless it is loaded, its state.
 */
export function modelLabel(model: ModelInfo, t: Translate): string {
  const parts = [model.id]
  if (model.size_bytes) parts.push(modelSize(model.size_bytes))
  if (model.state === 'unloaded') parts.push(t('modelNotLoaded'))
  else if (model.state === 'loading') parts.push(t('modelLoading', { pct: loadPercent(model) }))
  else if (model.state === 'failed') parts.push(t('modelFailed'))
  return parts.join(' · ')
}
