import 'fake-indexeddb/auto'
import { createStore as createIdbStore } from 'idb-keyval'
import { describe, expect, it } from 'vitest'
import { Conflict, type AccountApi, type ConversationChange, type Envelope } from '../api/account'
import { savedConversation } from '../testing/conversations'
import type { Conversation, Message } from '../types'
import { createChatStore } from './conversations'
import { merge, newChange, type Field } from './merge'
import { changeSince, startServerSync, type MetaStorage, type SyncMeta } from './serverSync'

const msg = (id: string, content: string, parentId: string | null = null): Message => ({
  id,
  role: 'user',
  content,
  createdAt: 1,
  parentId,
})

/**
 * The server's conversation routes in memory, as docs/accounts.md describes them: versions, a
 * change cursor with tombstones, 409 with the current copy, and PATCH merged as merge.ts merges.
 */
class FakeServer {
  cursor = 0
  rows = new Map<string, Envelope & { seq: number }>()
  writes = 0

  private save(id: string, conversation: Conversation | null): Envelope {
    const version = (this.rows.get(id)?.version ?? 0) + 1
    const env = { id, version, deleted: !conversation, conversation, seq: ++this.cursor }
    this.rows.set(id, env)
    this.writes++
    return this.out(env)
  }
  private out = ({ id, version, deleted, conversation }: Envelope): Envelope => ({
    id,
    version,
    deleted,
    conversation: conversation && structuredClone(conversation),
  })

  api(): AccountApi {
    const api = {
      changes: async (since: number) => ({
        cursor: this.cursor,
        more: false,
        changes: [...this.rows.values()].filter((r) => r.seq > since && !(since === 0 && r.deleted)).map(this.out),
      }),
      put: async (conv: Conversation, base?: number) => {
        const row = this.rows.get(conv.id)
        if (row && row.version !== base) throw new Conflict(this.out(row))
        return this.save(conv.id, structuredClone(conv))
      },
      patch: async (id: string, change: ConversationChange) => {
        const row = this.rows.get(id)
        if (!row?.conversation) throw new Conflict(row ? this.out(row) : { id, version: 0, deleted: true, conversation: null })
        const local = { ...row.conversation, ...change.fields, messages: change.messages } as Conversation
        const c = newChange()
        for (const f of Object.keys(change.fields)) c.fields.add(f as Field)
        for (const m of change.messages) c.messages.add(m.id)
        for (const id of change.removed) c.removed.add(id)
        return this.save(id, merge(row.conversation, local, c))
      },
      remove: async (id: string, base: number) => {
        const row = this.rows.get(id)
        if (row && row.version !== base) throw new Conflict(this.out(row))
        return this.save(id, null)
      },
      importMany: async (list: Conversation[]) => {
        const fresh = list.filter((c) => !this.rows.has(c.id))
        for (const c of fresh) this.save(c.id, structuredClone(c))
        return { imported: fresh.map((c) => c.id), skipped: list.filter((c) => !fresh.includes(c)).map((c) => c.id) }
      },
    }
    return api as unknown as AccountApi
  }
}

let count = 0
/** One browser of the user: its store, its bases and its sync meta. */
async function device(server: FakeServer, saved: Conversation[] = []) {
  const store = createChatStore()
  store.getState().load(saved, null)
  let meta: SyncMeta | null = null
  const metaStorage: MetaStorage = { get: () => meta, set: (m) => void (meta = m) }
  const sync = await startServerSync(store, server.api(), createIdbStore(`sync-test-${++count}`, 'bases'), metaStorage, {}, 60_000)
  return { store, sync, conv: (id: string) => store.getState().conversations[id] }
}

describe('server sync', () => {
  it('sends what a device wrote and brings it to another; a deletion follows as a tombstone', async () => {
    const server = new FakeServer()
    const a = await device(server)
    const b = await device(server)
    a.store.getState().importMany([savedConversation('c1', [msg('m1', 'hello')])])
    await a.sync.syncNow()
    expect(server.rows.get('c1')?.version).toBe(1)
    await b.sync.syncNow()
    expect(b.conv('c1')?.messages.map((m) => m.content)).toEqual(['hello'])

    b.store.getState().remove('c1')
    await b.sync.syncNow()
    expect(server.rows.get('c1')?.deleted).toBe(true)
    await a.sync.syncNow()
    expect(a.conv('c1')).toBeUndefined()
    // Nothing changed since: a sync writes nothing.
    const writes = server.writes
    await a.sync.syncNow()
    await b.sync.syncNow()
    expect(server.writes).toBe(writes)
  })

  it('a reload between storing the sync copy and caching the conversation brings it back; a deletion made before a reload is still sent', async () => {
    const server = new FakeServer()
    const a = await device(server)
    a.store.getState().importMany([savedConversation('c1', [msg('m1', 'hello')]), savedConversation('c2', [msg('m2', 'bye')])])
    await a.sync.syncNow()
    // b took both in (its sync copies stored), then reloaded before its cache had them.
    const bases = createIdbStore(`sync-test-${++count}`, 'bases')
    let meta: SyncMeta | null = null
    const metaStorage: MetaStorage = { get: () => meta, set: (m) => void (meta = m) }
    const before = createChatStore()
    before.getState().load([], null)
    const first = await startServerSync(before, server.api(), bases, metaStorage, {}, 60_000)
    before.getState().remove('c2')
    first.stop()
    const reloaded = createChatStore()
    reloaded.getState().load([], null)
    const again = await startServerSync(reloaded, server.api(), bases, metaStorage, {}, 60_000)
    expect(reloaded.getState().conversations.c1?.messages.map((m) => m.content)).toEqual(['hello'])
    expect(server.rows.get('c1')?.deleted).toBe(false)
    expect(server.rows.get('c2')?.deleted).toBe(true)
    expect(reloaded.getState().conversations.c2).toBeUndefined()
    again.stop()
  })

  it('two devices editing the same conversation keep both edits (no silent overwrite)', async () => {
    const server = new FakeServer()
    const a = await device(server)
    a.store.getState().importMany([savedConversation('c1', [msg('m1', 'hello')])])
    await a.sync.syncNow()
    const b = await device(server)
    expect(b.conv('c1')).toBeDefined()

    a.store.getState().addMessage('c1', msg('m2', 'from a', 'm1'))
    b.store.getState().rename('c1', 'Renamed on b')
    b.store.getState().addMessage('c1', msg('m3', 'from b', 'm1'))
    await a.sync.syncNow()
    await b.sync.syncNow() // its base is stale: the server merges its change into a's
    await a.sync.syncNow()
    for (const d of [a, b]) {
      expect(d.conv('c1')?.title).toBe('Renamed on b')
      expect(d.conv('c1')?.messages.map((m) => m.id).sort()).toEqual(['m1', 'm2', 'm3'])
    }
    expect(server.rows.get('c1')?.version).toBe(3)
  })

  it('a new conversation whose id the server already has (409) is merged into it, not overwritten', async () => {
    const server = new FakeServer()
    const a = await device(server)
    a.store.getState().importMany([savedConversation('c1', [msg('m1', 'on the server')])])
    await a.sync.syncNow()
    const b = await device(server)
    b.sync.declineOffer()
    b.store.getState().remove('c1')
    await b.sync.syncNow()
    // b deleted it: the server keeps a tombstone; a wrote in it meanwhile from a stale base.
    a.store.getState().addMessage('c1', msg('m2', 'written on a', 'm1'))
    await a.sync.syncNow()
    expect(server.rows.get('c1')?.deleted).toBe(false)
    expect(server.rows.get('c1')?.conversation?.messages.map((m) => m.id)).toEqual(['m1', 'm2'])
  })

  it('a deletion from a stale copy (409) keeps the conversation another device edited meanwhile', async () => {
    const server = new FakeServer()
    const a = await device(server)
    a.store.getState().importMany([savedConversation('c1', [msg('m1', 'hello')])])
    await a.sync.syncNow()
    const b = await device(server)
    b.store.getState().addMessage('c1', msg('m2', 'more', 'm1'))
    await b.sync.syncNow()
    a.store.getState().remove('c1')
    await a.sync.syncNow()
    expect(server.rows.get('c1')?.deleted).toBe(false)
    expect(a.conv('c1')?.messages.map((m) => m.id)).toEqual(['m1', 'm2'])
  })

  it('offers a first sign-in’s local history for import, once; declined, it stays on the device', async () => {
    const server = new FakeServer()
    const history = [savedConversation('old1', [msg('x', 'before sign-in')]), savedConversation('old2', [])]
    const a = await device(server, history)
    // Offered, not sent until the user says so.
    expect(server.rows.size).toBe(0)
    expect(await a.sync.importOffered()).toEqual({ imported: 2, skipped: 0 })
    expect([...server.rows.keys()].sort()).toEqual(['old1', 'old2'])
    const writes = server.writes
    await a.sync.syncNow()
    expect(server.writes).toBe(writes) // taken as synced, not written again

    const b = await device(server, [savedConversation('mine', [])])
    b.sync.declineOffer()
    await b.sync.syncNow()
    expect(server.rows.has('mine')).toBe(false)
    expect(Object.keys(b.store.getState().conversations).sort()).toEqual(['mine', 'old1', 'old2'])
  })

  it('changeSince names only what changed; null removes a field', () => {
    const base = { version: 4, conversation: { ...savedConversation('c', [msg('m1', 'a'), msg('m2', 'b')]), folder: 'f' } }
    const local = { ...savedConversation('c', [msg('m1', 'a'), msg('m3', 'c')]), title: 'new' }
    expect(changeSince(base, local)).toEqual({
      base_version: 4,
      fields: { title: 'new', folder: null },
      messages: [msg('m3', 'c')],
      removed: ['m2'],
    })
    expect(changeSince(base, structuredClone(base.conversation))).toBeNull()
  })
})
