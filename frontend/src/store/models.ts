import { createStore } from 'zustand/vanilla'
import { ApiError, chatModels, errorFromException, listModels, type ApiConfig, type ModelInfo } from '../api/client'
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
