import { createStore } from 'zustand/vanilla'
import { ApiError, chatModels, errorFromException, getModel, listModels, type ApiConfig, type ModelInfo } from '../api/client'
import type { ChatError } from '../types'
import { apiConfig } from './settings'

interface ModelsState {
  status: 'idle' | 'loading' | 'ok' | 'error'
  models: ModelInfo[]
  error: ChatError | null
}

export const modelsStore = createStore<ModelsState>()(() => ({ status: 'idle', models: [], error: null }))

function listChatModels(cfg: ApiConfig, signal?: AbortSignal): Promise<ModelInfo[]> {
  return listModels(cfg, signal).then(chatModels)
}

/** Tries an address and key before they are saved: how many chat models it lists, or why not. */
export async function probeServer(cfg: ApiConfig): Promise<{ count: number } | { error: ChatError }> {
  try {
    return { count: (await listChatModels(cfg)).length }
  } catch (e) {
    return { error: errorFromException(e) }
  }
}

let inFlight: AbortController | null = null

/** Fetches the chat models; a newer call (settings changed) supersedes an older one. */
export async function refreshModels(): Promise<ModelInfo[]> {
  inFlight?.abort()
  const controller = new AbortController()
  inFlight = controller
  modelsStore.setState({ status: 'loading' })
  try {
    const models = await listChatModels(apiConfig(), controller.signal)
    if (!controller.signal.aborted) modelsStore.setState({ status: 'ok', models, error: null })
    return models
  } catch (e) {
    if (controller.signal.aborted) return modelsStore.getState().models
    const error = e instanceof ApiError ? e.info : errorFromException(e)
    modelsStore.setState({ status: 'error', error })
    throw new ApiError(error)
  }
}

/** Whether a request for this model will wait for it to load first (a server that says nothing: no). */
export function waitsForLoad(model: ModelInfo | undefined): boolean {
  return model?.state === 'unloaded' || model?.state === 'loading'
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
  })

/**
 * Follows a model's load as the server reports it (its card's state and progress, read from the
 * loader's own count of weights read) until it is loaded or failed, or `signal` aborts; each read
 * updates the model's state in the list, so the picker shows it.
 */
export async function followLoad(id: string, signal: AbortSignal, everyMs = 400): Promise<void> {
  while (!signal.aborted) {
    let card: ModelInfo
    try {
      card = await getModel(apiConfig(), id, signal)
    } catch {
      return // the request itself reports why the server cannot be reached
    }
    if (signal.aborted) return
    // Only where the load stands: the rest of the card is the list's (as the list was read).
    const { state, progress, error } = card
    modelsStore.setState((s) => ({ models: s.models.map((m) => (m.id === id ? { ...m, state, progress, error } : m)) }))
    if (!waitsForLoad(card)) return
    await sleep(everyMs, signal)
  }
}
