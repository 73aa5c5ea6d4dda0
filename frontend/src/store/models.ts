import { createStore } from 'zustand/vanilla'
import {
  ApiError,
  chatModels,
  createEmbeddings,
  embeddingModels,
  errorFromException,
  getModel,
  listModels,
  type ApiConfig,
  type ModelInfo,
} from '../api/client'
import type { ChatError } from '../types'
import { apiConfig } from './settings'

interface ModelsState {
  status: 'idle' | 'loading' | 'ok' | 'error'
  /** The chat models. */
  models: ModelInfo[]
  /** The models that embed documents' passages (the same listing). */
  embeddingModels: ModelInfo[]
  error: ChatError | null
}

export const modelsStore = createStore<ModelsState>()(() => ({ status: 'idle', models: [], embeddingModels: [], error: null }))

/** Tries an address and key before they are saved: how many chat models it lists, or why not. */
export async function probeServer(cfg: ApiConfig): Promise<{ count: number } | { error: ChatError }> {
  try {
    return { count: chatModels(await listModels(cfg)).length }
  } catch (e) {
    return { error: errorFromException(e) }
  }
}

let inFlight: AbortController | null = null

/** Fetches the models and returns the chat ones; a newer call (settings changed) supersedes an older one. */
export async function refreshModels(): Promise<ModelInfo[]> {
  inFlight?.abort()
  const controller = new AbortController()
  inFlight = controller
  modelsStore.setState({ status: 'loading' })
  try {
    const listed = await listModels(apiConfig(), controller.signal)
    const models = chatModels(listed)
    if (!controller.signal.aborted) {
      modelsStore.setState({ status: 'ok', models, embeddingModels: embeddingModels(listed), error: null })
    }
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
    const card = await readLoad(id, signal)
    if (!waitsForLoad(card ?? undefined)) return
    await sleep(everyMs, signal)
  }
}

/** Reads where a model's load stands into the lists; null when the server cannot say (or `signal` aborted). */
async function readLoad(id: string, signal?: AbortSignal): Promise<ModelInfo | null> {
  let card: ModelInfo
  try {
    card = await getModel(apiConfig(), id, signal)
  } catch {
    return null // the request itself reports why the server cannot be reached
  }
  if (signal?.aborted) return null
  // Only where the load stands and what loading learnt (context, memory, quantisation): the rest
  // of the card (its capabilities) is the list's, as the list was read.
  const { state, progress, error, max_model_len, memory_bytes, quantization } = card
  const learnt = Object.fromEntries(Object.entries({ max_model_len, memory_bytes, quantization }).filter(([, v]) => v !== undefined))
  const update = (list: ModelInfo[]) => list.map((m) => (m.id === id ? { ...m, state, progress, error, ...learnt } : m))
  modelsStore.setState((s) => ({ models: update(s.models), embeddingModels: update(s.embeddingModels) }))
  return card
}

/**
 * Loads an embeddings model now, as chat models load: a request naming it (here, one word to
 * embed) loads it while the lists follow the server's progress. Its failure shows in its state.
 */
export async function loadEmbeddingModel(id: string): Promise<void> {
  if (!waitsForLoad(modelsStore.getState().embeddingModels.find((m) => m.id === id))) return
  const following = new AbortController()
  const followed = followLoad(id, following.signal)
  await createEmbeddings(apiConfig(), id, ['load']).catch(() => undefined)
  following.abort()
  await followed
  // The load's end as the server has it: the loop may have been asleep when it came.
  await readLoad(id)
}
