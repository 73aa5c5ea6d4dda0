import { createStore as createIdbStore, entries, getMany, promisifyRequest, type UseStore } from 'idb-keyval'
import type { StoreApi } from 'zustand/vanilla'
import type { Conversation } from '../types'
import { whenNoAnswer } from './answerLock'
import type { ChatStore } from './conversations'
import { differs, merge, newChange, recordChange, type Change } from './merge'

const ACTIVE_KEY = 'localchat.active'
const CHANNEL = 'localchat.conversations'

/** Sent to the other tabs after a write: which conversations to read again. */
interface Written {
  ids: string[]
}

export function openConversationDb(): UseStore {
  return createIdbStore('localchat', 'conversations')
}

/** Where this origin's tabs tell each other what they wrote. */
export function openTabChannel(): BroadcastChannel {
  return new BroadcastChannel(CHANNEL)
}

export async function loadInto(store: StoreApi<ChatStore>, db: UseStore): Promise<void> {
  const saved = (await entries<string, Conversation>(db)).map(([, conv]) => conv)
  store.getState().load(saved, localStorage.getItem(ACTIVE_KEY))
}

/**
 * Writes the batch in one transaction, each conversation merged into what is stored (another
 * tab may have written it since): returns what was stored, null where deleted.
 */
function write(db: UseStore, batch: Map<string, Change | 'deleted'>, local: Record<string, Conversation>) {
  return db('readwrite', (os) => {
    const stored = new Map<string, Conversation | null>()
    for (const [id, change] of batch) {
      const conv = local[id]
      if (change === 'deleted' || !conv) {
        os.delete(id)
        stored.set(id, null)
        continue
      }
      const read = os.get(id)
      read.onsuccess = () => {
        const old = read.result as Conversation | undefined
        const merged = old ? merge(old, conv, change) : conv
        os.put(merged, id)
        stored.set(id, merged)
      }
    }
    return promisifyRequest(os.transaction).then(() => stored)
  })
}

/**
 * Whether a change is written at once rather than with the streaming batch: anything but an
 * answer's streaming text is, and so is an answer's start and the id the server keeps it under,
 * which a reload right after needs to pick the answer up again (chat/generate.ts resumeAnswers).
 */
function urgent(before: Conversation | undefined, conv: Conversation | undefined): boolean {
  if (!conv?.messages.some((m) => m.status === 'streaming')) return true
  if (!before || before.messages.length !== conv.messages.length) return true
  return conv.messages.some((m, i) => m.streamId !== before.messages[i]?.streamId)
}

/**
 * Writes changed conversations to IndexedDB and keeps tabs in step. A conversation whose answer
 * is still streaming changes every frame, so its text is written at most once per `delayMs` (a
 * crash loses at most that much of it); any other change (see `urgent`) (an answer that ended, a rename, a deletion)
 * is written at once, so a reload right after an answer finishes keeps all of it.
 *
 * Another tab may have written the same conversation meanwhile, so a write takes from this tab
 * only the fields and messages it changed (see merge). After a write, the other tabs are told
 * on `channel` (openTabChannel) and read those conversations again. `abandoned` is called when
 * another tab closed with an answer streaming, now shown interrupted (the server may still have it).
 */
export function persistChanges(
  store: StoreApi<ChatStore>,
  db: UseStore,
  delayMs = 500,
  channel: BroadcastChannel | null = null,
  abandoned: () => void = () => undefined,
) {
  const pending = new Map<string, Change | 'deleted'>()
  // Ids in writes queued or under way, with how many: what a write stored for them is already
  // older than this tab's store while a later write of theirs is still to land.
  const writingIds = new Map<string, number>()
  let timer: ReturnType<typeof setTimeout> | null = null
  let writing: Promise<void> = Promise.resolve()
  // Set while this tab takes in what was stored: not a change of its own to write back.
  let fromStorage = false

  /** Changes the store with what was stored elsewhere: nothing for this tab to write back. */
  const setFromStorage = (conversations: Record<string, Conversation>) => {
    fromStorage = true
    try {
      store.setState((s) => ({ conversations, activeId: s.activeId && conversations[s.activeId] ? s.activeId : null }))
    } finally {
      fromStorage = false
    }
  }

  // Conversations with another tab's answer streaming in, watched until that tab lets go.
  const watched = new Set<string>()
  /**
   * Once no tab is answering in `id`, an answer still shown as streaming here will never finish
   * (its tab closed before its last write): it shows as interrupted, as after a reload.
   */
  const watch = (id: string) => {
    if (watched.has(id)) return
    watched.add(id)
    whenNoAnswer(id, () => {
      watched.delete(id)
      const conv = store.getState().conversations[id]
      if (!conv?.messages.some((m) => m.status === 'streaming')) return
      const messages = conv.messages.map((m) => (m.status === 'streaming' ? { ...m, status: 'interrupted' as const } : m))
      setFromStorage({ ...store.getState().conversations, [id]: { ...conv, messages } })
      // Once the probe that found no tab answering has let go of the lock the resuming tab takes.
      setTimeout(abandoned)
    })
  }

  /** Takes stored versions into the store, except where this tab has changes not yet written. */
  const take = (stored: Map<string, Conversation | null>, onlyIfDifferent: boolean) => {
    const current = store.getState().conversations
    const next = { ...current }
    let changed = false
    for (const [id, conv] of stored) {
      if (pending.has(id) || writingIds.has(id)) continue
      const mine = current[id]
      if (conv === null) {
        if (!mine) continue
        delete next[id]
      } else if (!mine || !onlyIfDifferent || differs(conv, mine)) next[id] = conv
      else continue
      changed = true
      if (conv?.messages.some((m) => m.status === 'streaming')) watch(id)
    }
    if (changed) setFromStorage(next)
  }

  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer)
    timer = null
    if (pending.size === 0) return writing
    const batch = new Map(pending)
    pending.clear()
    for (const id of batch.keys()) writingIds.set(id, (writingIds.get(id) ?? 0) + 1)
    const { conversations } = store.getState()
    // Chained so a slow write never lands after a newer one.
    writing = writing.then(async () => {
      const stored = await write(db, batch, conversations).finally(() => {
        for (const id of batch.keys()) {
          const left = (writingIds.get(id) ?? 1) - 1
          if (left) writingIds.set(id, left)
          else writingIds.delete(id)
        }
      })
      channel?.postMessage({ ids: [...batch.keys()] } satisfies Written)
      // What other tabs wrote into these conversations shows here too.
      take(stored, true)
    })
    return writing
  }

  const onMessage = (e: MessageEvent<Written>) => {
    void getMany<Conversation>(e.data.ids, db).then((values) =>
      take(new Map(e.data.ids.map((id, i) => [id, values[i] ?? null])), false),
    )
  }
  channel?.addEventListener('message', onMessage)

  const unsubscribe = store.subscribe((state, prev) => {
    if (state.activeId !== prev.activeId) {
      if (state.activeId) localStorage.setItem(ACTIVE_KEY, state.activeId)
      else localStorage.removeItem(ACTIVE_KEY)
    }
    if (fromStorage || state.conversations === prev.conversations || !state.loaded) return
    let now = false
    for (const id of new Set([...Object.keys(state.conversations), ...Object.keys(prev.conversations)])) {
      const conv = state.conversations[id]
      const before = prev.conversations[id]
      if (conv === before) continue
      if (!conv) pending.set(id, 'deleted')
      else {
        let change = pending.get(id)
        if (!change || change === 'deleted') pending.set(id, (change = newChange()))
        recordChange(change, before, conv)
      }
      if (urgent(before, conv)) now = true
    }
    if (now) void flush()
    else if (!timer) timer = setTimeout(() => void flush(), delayMs)
  })

  return {
    flush,
    stop: () => {
      unsubscribe()
      channel?.removeEventListener('message', onMessage)
      return flush().finally(() => channel?.close())
    },
  }
}
