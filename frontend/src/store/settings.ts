import { createStore } from 'zustand/vanilla'
import { createJSONStorage, persist } from 'zustand/middleware'
import { DEFAULT_PARAMS, type GenParams } from '../types'
import { apiUrl, type ApiConfig } from '../api/client'

export type LanguagePref = 'auto' | 'en' | 'zh'
export type ThemePref = 'system' | 'light' | 'dark'

/** A named system prompt, reusable across conversations. */
export interface Preset {
  name: string
  prompt: string
}

/** A saved message text, put into the message box by typing `/` and its name. */
export interface SavedPrompt {
  name: string
  text: string
}

export interface Settings {
  /** Empty means same origin (`/v1`), so one dist/ works behind any host without a rebuild. */
  apiBaseUrl: string
  apiKey: string
  language: LanguagePref
  theme: ThemePref
  /** Parameters a new conversation starts with; changed only by an explicit "save as default". */
  defaultParams: GenParams
  lastModel: string
  /** The model that embeds documents' passages; empty: the server's first. */
  embeddingModel: string
  presets: Preset[]
  prompts: SavedPrompt[]
}

interface SettingsActions {
  update: (patch: Partial<Settings>) => void
}

// `npm run dev` serves the page on :5173 while the API stays on :8000 (the backend allows that origin).
const DEV_API = import.meta.env.DEV ? 'http://127.0.0.1:8000/v1' : ''

const SETTINGS_KEY = 'localchat.settings'

export const settingsStore = createStore<Settings & SettingsActions>()(
  persist(
    (set) => ({
      apiBaseUrl: DEV_API,
      apiKey: '',
      language: 'auto',
      theme: 'system',
      defaultParams: DEFAULT_PARAMS,
      lastModel: '',
      embeddingModel: '',
      presets: [],
      prompts: [],
      update: (patch) => set(patch),
    }),
    {
      name: SETTINGS_KEY,
      storage: createJSONStorage(() => localStorage),
      partialize: ({ update: _update, ...rest }) => rest,
    },
  ),
)

// Another tab saved settings: take them, so every tab talks to the same server in the same language.
globalThis.addEventListener?.('storage', (e: StorageEvent) => {
  if (e.key === SETTINGS_KEY) void settingsStore.persist.rehydrate()
})

/** Saves `prompt` under `name`, replacing a preset of that name. */
export function savePreset(name: string, prompt: string): void {
  const presets = settingsStore.getState().presets.filter((p) => p.name !== name)
  settingsStore.getState().update({ presets: [...presets, { name, prompt }].sort((a, b) => a.name.localeCompare(b.name)) })
}

export function deletePreset(name: string): void {
  settingsStore.getState().update({ presets: settingsStore.getState().presets.filter((p) => p.name !== name) })
}

/** Saves a prompt under `name`, replacing the one called `replacing` (its old name) or of that name. */
export function savePrompt(name: string, text: string, replacing = name): void {
  const prompts = settingsStore.getState().prompts.filter((p) => p.name !== name && p.name !== replacing)
  settingsStore.getState().update({ prompts: [...prompts, { name, text }].sort((a, b) => a.name.localeCompare(b.name)) })
}

export function deletePrompt(name: string): void {
  settingsStore.getState().update({ prompts: settingsStore.getState().prompts.filter((p) => p.name !== name) })
}

export function apiConfig(): ApiConfig {
  const s = settingsStore.getState()
  return { baseUrl: s.apiBaseUrl, apiKey: s.apiKey }
}

/** The API's absolute base URL as requests will use it (an empty setting means this site's `/v1`). */
export function apiBaseHref(baseUrl = settingsStore.getState().apiBaseUrl): string {
  return new URL(apiUrl(baseUrl, ''), location.href).href
}

/** The base URL with /v1 added, where the saved one lacks it (the usual cause of a `not_api` error). */
export function suggestedBaseUrl(): string | null {
  const base = settingsStore.getState().apiBaseUrl.trim().replace(/\/+$/, '')
  return base && !/\/v1$/.test(base) ? `${base}/v1` : null
}
