import { createStore as createIdbStore, del, entries, set, type UseStore } from 'idb-keyval'
import type { StoreApi } from 'zustand/vanilla'
import { ApiError } from '../api/client'
import { Conflict, type AccountApi, type ConversationChange, type Envelope } from '../api/account'
import type { Conversation } from '../types'
import type { ChatStore } from './conversations'
import { FIELDS } from './merge'

/**
 * Keeps a signed-in user's conversations in step with the server (docs/accounts.md,
 * "Conversations on the server"); IndexedDB stays the offline cache (store/persist.ts).
 *
 * For each conversation this device keeps the last copy it had from the server, its *base*,
 * with that copy's version. What the user changed since is the difference between the base and
 * the store: sent as a PATCH on that base version, which the server merges as store/merge.ts
 * merges tabs (another device's messages stay; a message both changed is kept twice, as
 * branches), so no device overwrites another's work. Changes from other devices arrive from
 * `GET /api/conversations?since=<cursor>`; a conversation with changes not yet sent keeps them
 * and is merged on the next push.
 */

export interface Base {
  version: number
  conversation: Conversation
}

/** What this device remembers of a user's sync between visits (localStorage). */
export interface SyncMeta {
  cursor: number
  /** Conversations that were here before the first sign-in, until the user says whether to import them. */
  offered: string[]
  /** Those the user chose not to import: they stay on this device only. */
  localOnly: string[]
  /** Synced conversations deleted here whose deletion the server has not taken yet. */
  deleted?: string[]
}

export interface MetaStorage {
  get: () => SyncMeta | null
  set: (meta: SyncMeta) => void
}

export type SyncState =
  | { kind: 'syncing' }
  | { kind: 'synced'; at: number }
  | { kind: 'offline'; message: string }
  | { kind: 'signed_out' }

export interface SyncEvents {
  onState?: (state: SyncState) => void
  /** How many conversations of this device's history are offered for import (0: none). */
  onOffer?: (count: number) => void
}

export function openBaseDb(userId: number): UseStore {
  return createIdbStore(`localchat-sync-${userId}`, 'bases')
}

export function localMeta(userId: number): MetaStorage {
  const key = `localchat.sync.${userId}`
  return {
    get: () => {
      const raw = localStorage.getItem(key)
      return raw ? (JSON.parse(raw) as SyncMeta) : null
    },
    set: (meta) => localStorage.setItem(key, JSON.stringify(meta)),
  }
}

/** JSON with sorted keys and without null or undefined values: the server drops both alike. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== null && x !== undefined)
      return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)))
    }
    return v
  })
}

/** What `local` changed since `base`, as a PATCH body; null when nothing did. */
export function changeSince(base: Base, local: Conversation): ConversationChange | null {
  const fields: Record<string, unknown> = {}
  for (const f of FIELDS) {
    // null removes a field the base had.
    if (canonical(base.conversation[f]) !== canonical(local[f])) fields[f] = local[f] ?? null
  }
  const old = new Map(base.conversation.messages.map((m) => [m.id, canonical(m)]))
  const messages = local.messages.filter((m) => old.get(m.id) !== canonical(m))
  const kept = new Set(local.messages.map((m) => m.id))
  const removed = [...old.keys()].filter((id) => !kept.has(id))
  if (!Object.keys(fields).length && !messages.length && !removed.length) return null
  return { base_version: base.version, fields, messages, removed }
}

const streaming = (c: Conversation) => c.messages.some((m) => m.status === 'streaming')

export interface ServerSync {
  /** Sends this device's changes, then takes in other devices'; one run at a time. */
  syncNow: () => Promise<void>
  /** Imports the offered local history into the account (the server skips what it has). */
  importOffered: () => Promise<{ imported: number; skipped: number }>
  /** Keeps the offered conversations on this device only. */
  declineOffer: () => void
  stop: () => void
}

/**
 * Starts syncing `store` with the account behind `api`: at once, `pushDelayMs` after a change
 * (an answer being streamed waits until it ends) and whenever `syncNow` is called (focus,
 * coming back online, a poll).
 */
export async function startServerSync(
  store: StoreApi<ChatStore>,
  api: AccountApi,
  baseDb: UseStore,
  metaStorage: MetaStorage,
  events: SyncEvents = {},
  pushDelayMs = 1000,
): Promise<ServerSync> {
  const bases = new Map<string, Base>(await entries<string, Base>(baseDb))
  let meta: SyncMeta = metaStorage.get() ?? {
    cursor: 0,
    // First sign-in here: what this device already holds is the user's to import, or not.
    offered: Object.keys(store.getState().conversations),
    localOnly: [],
  }
  const saveMeta = (next: Partial<SyncMeta>) => {
    meta = { ...meta, ...next }
    metaStorage.set(meta)
  }
  saveMeta({})
  events.onOffer?.(meta.offered.length)
  let stopped = false
  // Set while the server's copies go into the store: nothing of this device's to send back.
  let applying = false

  const setBase = async (env: Envelope) => {
    if (env.deleted || !env.conversation) {
      bases.delete(env.id)
      await del(env.id, baseDb)
    } else {
      const base = { version: env.version, conversation: env.conversation }
      bases.set(env.id, base)
      await set(env.id, base, baseDb)
    }
  }

  /** The server's copy into the store, unless the user changed it since `seen` was read. */
  const take = (env: Envelope, seen: Conversation | undefined) => {
    const now = store.getState().conversations
    if (now[env.id] !== seen) return
    const conversations = { ...now }
    if (env.conversation && !env.deleted) conversations[env.id] = env.conversation
    else delete conversations[env.id]
    const { activeId } = store.getState()
    applying = true
    try {
      store.setState({ conversations, activeId: activeId && conversations[activeId] ? activeId : null })
    } finally {
      applying = false
    }
  }

  const skipped = () => new Set([...meta.offered, ...meta.localOnly])
  const deletedHere = () => new Set(meta.deleted ?? [])

  /** One conversation's write; a 409 (another device wrote first, or deleted it) is merged in. */
  const pushOne = async (id: string, local: Conversation | undefined, base: Base | undefined) => {
    let env: Envelope
    try {
      if (!local) env = await api.remove(id, base?.version ?? 1)
      else if (!base) env = await api.put(local)
      else {
        const change = changeSince(base, local)
        if (!change) return
        env = await api.patch(id, change)
      }
    } catch (e) {
      if (!(e instanceof Conflict)) throw e
      const current = e.current
      if (!local) env = current // edited elsewhere after this device's base: it stays, with those edits
      else if (current.deleted || !current.conversation) env = await api.put(local, current.version) // edited here: revived
      else {
        // The same id already there (imported, or from another device): what this copy has
        // that the server's lacks is merged in; the server's other messages stay.
        const change = changeSince({ version: current.version, conversation: current.conversation }, local)
        env = change ? await api.patch(id, { ...change, removed: [] }) : current
      }
    }
    await setBase(env)
    take(env, local)
  }

  const push = async () => {
    const { conversations } = store.getState()
    const skip = skipped()
    for (const id of new Set([...Object.keys(conversations), ...bases.keys()])) {
      const local = conversations[id]
      const base = bases.get(id)
      if (skip.has(id) || (local && streaming(local))) continue
      if (!local && !base) continue
      if (!local && base && !deletedHere().has(id)) {
        // Synced, but the page closed before its copy reached this device's cache: not a
        // deletion (sending one would delete it everywhere); the synced copy comes back.
        take({ id, version: base.version, deleted: false, conversation: base.conversation }, undefined)
        continue
      }
      await pushOne(id, local, base)
      if (!local) saveMeta({ deleted: [...deletedHere()].filter((d) => d !== id) })
    }
  }

  const pull = async () => {
    for (;;) {
      const page = await api.changes(meta.cursor)
      for (const env of page.changes) {
        const base = bases.get(env.id)
        if (base && base.version >= env.version) continue
        const local = store.getState().conversations[env.id]
        // Changed here (or deleted here) and not yet sent: the next push merges it on the
        // server. Without a base (just imported), the copy here is compared with the server's.
        const against = base ?? (env.conversation ? { version: env.version, conversation: env.conversation } : undefined)
        const dirty = local ? !against || changeSince(against, local) !== null : !!base && !env.deleted
        if (dirty) continue
        await setBase(env)
        take(env, local)
      }
      saveMeta({ cursor: page.cursor })
      if (!page.more) return
    }
  }

  let running: Promise<void> | null = null
  let again = false
  const run = async () => {
    events.onState?.({ kind: 'syncing' })
    try {
      await push()
      await pull()
      events.onState?.({ kind: 'synced', at: Date.now() })
    } catch (e) {
      if (e instanceof ApiError && e.info.status === 401) {
        stop()
        events.onState?.({ kind: 'signed_out' })
      } else events.onState?.({ kind: 'offline', message: e instanceof Error ? e.message : String(e) })
    }
  }
  const syncNow = (): Promise<void> => {
    if (stopped) return Promise.resolve()
    if (running) {
      again = true
      return running
    }
    running = run().finally(() => {
      running = null
      if (again) {
        again = false
        void syncNow()
      }
    })
    return running
  }

  let timer: ReturnType<typeof setTimeout> | null = null
  const unsubscribe = store.subscribe((s, prev) => {
    if (applying || s.conversations === prev.conversations) return
    // A deletion is told from a conversation merely missing here (see push) by this record.
    const gone = Object.keys(prev.conversations).filter((id) => !s.conversations[id] && bases.has(id))
    if (gone.length) saveMeta({ deleted: [...new Set([...deletedHere(), ...gone])] })
    if (timer) return
    // An answer being streamed changes every frame: it is sent once it ends (that is a change too).
    const settled = Object.keys({ ...s.conversations, ...prev.conversations }).some((id) => {
      const conv = s.conversations[id]
      return conv !== prev.conversations[id] && !(conv && streaming(conv))
    })
    if (!settled) return
    timer = setTimeout(() => {
      timer = null
      void syncNow()
    }, pushDelayMs)
  })
  const stop = () => {
    stopped = true
    unsubscribe()
    if (timer) clearTimeout(timer)
  }

  await syncNow()
  return {
    syncNow,
    importOffered: async () => {
      const { conversations } = store.getState()
      const list = meta.offered.flatMap((id) => (conversations[id] ? [conversations[id]] : []))
      const result = list.length ? await api.importMany(list) : { imported: [], skipped: [] }
      saveMeta({ offered: [] })
      events.onOffer?.(0)
      // The server's copies become this device's bases first: equal to the ones here, they
      // need no write back (a push without bases would send each again, to a 409).
      await pull()
      await syncNow()
      return { imported: result.imported.length, skipped: result.skipped.length }
    },
    declineOffer: () => {
      saveMeta({ localOnly: [...meta.localOnly, ...meta.offered], offered: [] })
      events.onOffer?.(0)
    },
    stop,
  }
}
