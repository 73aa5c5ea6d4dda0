import { createStore as createIdbStore, delMany, entries, setMany, type UseStore } from 'idb-keyval'
import type { StoreApi } from 'zustand/vanilla'
import type { Conversation } from '../types'
import type { ChatStore } from './conversations'

const ACTIVE_KEY = 'localchat.active'

export function openConversationDb(): UseStore {
  return createIdbStore('localchat', 'conversations')
}

export async function loadInto(store: StoreApi<ChatStore>, db: UseStore): Promise<void> {
  const saved = (await entries<string, Conversation>(db)).map(([, conv]) => conv)
  store.getState().load(saved, localStorage.getItem(ACTIVE_KEY))
}

/**
 * Writes changed conversations to IndexedDB. A conversation whose answer is still streaming
 * changes every frame, so it is written at most once per `delayMs` (a crash loses at most that
 * much of it); any other change (an answer that ended, a rename, a deletion) is written at once,
 * so a reload right after an answer finishes keeps all of it.
 */
export function persistChanges(store: StoreApi<ChatStore>, db: UseStore, delayMs = 500) {
  const dirty = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | null = null
  let writing: Promise<void> = Promise.resolve()

  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer)
    timer = null
    if (dirty.size === 0) return writing
    const { conversations } = store.getState()
    const ids = [...dirty]
    dirty.clear()
    const toSet = ids.flatMap((id) => {
      const conv = conversations[id]
      return conv ? [[id, conv] as [string, Conversation]] : []
    })
    const toDelete = ids.filter((id) => !conversations[id])
    // Chained so a slow write never lands after a newer one.
    writing = writing.then(async () => {
      if (toSet.length) await setMany(toSet, db)
      if (toDelete.length) await delMany(toDelete, db)
    })
    return writing
  }

  const unsubscribe = store.subscribe((state, prev) => {
    if (state.activeId !== prev.activeId) {
      if (state.activeId) localStorage.setItem(ACTIVE_KEY, state.activeId)
      else localStorage.removeItem(ACTIVE_KEY)
    }
    if (state.conversations === prev.conversations || !state.loaded) return
    let now = false
    for (const id of new Set([...Object.keys(state.conversations), ...Object.keys(prev.conversations)])) {
      const conv = state.conversations[id]
      if (conv === prev.conversations[id]) continue
      dirty.add(id)
      if (!conv?.messages.some((m) => m.status === 'streaming')) now = true
    }
    if (now) void flush()
    else if (!timer) timer = setTimeout(() => void flush(), delayMs)
  })

  return {
    flush,
    stop: () => {
      unsubscribe()
      return flush()
    },
  }
}
