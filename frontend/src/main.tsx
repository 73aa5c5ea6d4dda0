// The global sheets come first, so the components' own sheets (imported below) follow them.
import './styles.css'
import './ui/controls.css'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { resumeAnswers } from './chat/generate'
import { accountStore, watchAccount } from './store/account'
import { chatStore } from './store/conversations'
import { refreshModels } from './store/models'
import { loadInto, openConversationDb, openTabChannel, persistChanges } from './store/persist'
import { settingsStore } from './store/settings'

const db = openConversationDb()
// Other tabs of this page write the same conversations: they tell each other on a channel.
// An answer a closed tab was writing, or this page before a reload, is picked up from the server.
const persistence = persistChanges(chatStore, db, undefined, openTabChannel(), resumeAnswers)
// Last changes (e.g. a half-streamed answer) are written before the tab goes away.
addEventListener('pagehide', () => void persistence.flush())
document.addEventListener('visibilitychange', () => {
  if (document.hidden) void persistence.flush()
})

void loadInto(chatStore, db).then(resumeAnswers, (e: unknown) => {
  // Private windows in some browsers refuse IndexedDB: chat still works, just without history.
  console.error('Could not read saved conversations', e)
  chatStore.getState().load([], null)
})
// Who is signed in; a signed-in user's conversations are synced with the server (store/serverSync.ts).
watchAccount()
const loadModels = () => void refreshModels().catch(() => undefined)
loadModels()
// A new server address or key (from Settings or an error's key field) means a new model list.
settingsStore.subscribe((s, prev) => {
  if (s.apiBaseUrl !== prev.apiBaseUrl || s.apiKey !== prev.apiKey) loadModels()
})
// Signed in (AUTH=password): the models are now listed to this user.
accountStore.subscribe((s, prev) => {
  if (s.user?.id !== prev.user?.id) loadModels()
})

// The offline shell (public/sw.js); not in development, where Vite serves the files itself.
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  addEventListener('load', () => {
    navigator.serviceWorker.register('./sw.js').catch((e: unknown) => console.warn('No offline shell:', e))
  })
}

const root = document.getElementById('root')
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  )
}
