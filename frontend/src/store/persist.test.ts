import 'fake-indexeddb/auto'
import { createStore as createIdbStore, entries, get } from 'idb-keyval'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_PARAMS, type Conversation } from '../types'
import { activePath, siblings } from './branches'
import { createChatStore } from './conversations'
import { loadInto, persistChanges } from './persist'

// Node has no localStorage; the active conversation id is kept there.
class MemoryStorage {
  private data = new Map<string, string>()
  getItem = (k: string) => this.data.get(k) ?? null
  setItem = (k: string, v: string) => void this.data.set(k, v)
  removeItem = (k: string) => void this.data.delete(k)
}

let dbCount = 0
const freshDb = () => createIdbStore(`test-${++dbCount}`, 'conversations')

/** A loaded store saving to a fresh database after `delayMs`, with one new conversation. */
function savingStore(delayMs: number, channel: BroadcastChannel | null = null) {
  const db = freshDb()
  const store = createChatStore()
  store.getState().load([], null)
  const saver = persistChanges(store, db, delayMs, channel)
  const id = store.getState().create({ params: DEFAULT_PARAMS, model: 'm' })
  return { db, store, saver, id }
}

describe('persistence to IndexedDB', () => {
  beforeEach(() => {
    vi.stubGlobal('localStorage', new MemoryStorage())
  })
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it('saves conversations and reads them back into a new store, as after a restart', async () => {
    const { db, store: first, saver, id } = savingStore(10)
    first.getState().addMessage(id, { id: 'u1', role: 'user', content: 'Hello', createdAt: 1 })
    first.getState().addMessage(id, { id: 'a1', role: 'assistant', content: 'Hi', createdAt: 2, status: 'streaming' })
    await saver.stop()

    const second = createChatStore()
    await loadInto(second, db)
    const conv = second.getState().conversations[id] as Conversation
    expect(conv.title).toBe('Hello')
    expect(conv.messages.map((m) => m.content)).toEqual(['Hello', 'Hi'])
    // The page went away mid-answer: it comes back as interrupted, ready for retry.
    expect(conv.messages[1]?.status).toBe('interrupted')
    expect(second.getState().activeId).toBe(id)
  })

  it('a write landing while a later one is queued leaves the later change in the store', async () => {
    // A new chat with settings chosen on the welcome screen: created, then patched at once. The
    // creation's write, landing first, must not put the unpatched conversation back while the
    // page sends its first message.
    const db = freshDb()
    const store = createChatStore()
    store.getState().load([], null)
    const saver = persistChanges(store, db, 10)
    const id = store.getState().create({ params: DEFAULT_PARAMS, model: 'm' })
    store.getState().patch(id, { systemPrompt: 'Talk like a pirate.' })
    const prompts: string[] = []
    const unsubscribe = store.subscribe((s) => prompts.push(s.conversations[id]?.systemPrompt ?? 'gone'))
    await saver.flush()
    unsubscribe()
    expect(prompts.filter((p) => p !== 'Talk like a pirate.')).toEqual([])
    expect(store.getState().conversations[id]?.systemPrompt).toBe('Talk like a pirate.')
    expect((await get<Conversation>(id, db))?.systemPrompt).toBe('Talk like a pirate.')
  })

  it('batches a streaming answer into few writes, and deletes removed conversations', async () => {
    const { db, store, saver, id } = savingStore(50)
    await saver.flush()
    store.getState().addMessage(id, { id: 'a1', role: 'assistant', content: '', createdAt: 1, status: 'streaming' })
    store.getState().updateMessage(id, 'a1', { streamId: 's1' })
    // The answer's start and its stream id are written at once (a reload resumes from them)…
    await saver.flush()
    for (let i = 1; i <= 100; i++) store.getState().updateMessage(id, 'a1', { content: 'x'.repeat(i) })
    const saved = async () => ((await entries<string, Conversation>(db)) as [[string, Conversation]])[0][1]
    expect((await saved()).messages[0]).toMatchObject({ content: '', status: 'streaming', streamId: 's1' })
    // …its text with the batch.

    await new Promise((r) => setTimeout(r, 60))
    await saver.flush()
    expect((await saved()).messages[0]?.content).toBe('x'.repeat(100))

    store.getState().remove(id)
    await saver.flush()
    expect(await entries(db)).toEqual([])
    await saver.stop()
  })

  it('writes an answer’s start and the id the server keeps it under at once, for a reload to resume it', async () => {
    const { db, store, saver, id } = savingStore(60_000)
    store.getState().addMessage(id, { id: 'a1', role: 'assistant', content: '', createdAt: 1, status: 'streaming' })
    store.getState().updateMessage(id, 'a1', { streamId: 's1' })
    store.getState().updateMessage(id, 'a1', { content: 'Once upon' })
    await new Promise((r) => setTimeout(r, 50)) // far less than the batch delay
    const [[, saved]] = (await entries<string, Conversation>(db)) as [[string, Conversation]]
    expect(saved.messages[0]).toMatchObject({ status: 'streaming', streamId: 's1' })
    await saver.stop()
  })

  it('writes an answer that ended at once, without waiting for the batch', async () => {
    const { db, store, saver, id } = savingStore(60_000)
    store.getState().addMessage(id, { id: 'a1', role: 'assistant', content: '', createdAt: 1, status: 'streaming' })
    store.getState().updateMessage(id, 'a1', { content: '1, 2, 3, 4, 5' })
    store.getState().updateMessage(id, 'a1', { status: 'done' })
    await new Promise((r) => setTimeout(r, 50)) // far less than the batch delay
    const [[, saved]] = (await entries<string, Conversation>(db)) as [[string, Conversation]]
    expect(saved.messages[0]).toMatchObject({ content: '1, 2, 3, 4, 5', status: 'done' })
    await saver.stop()
  })

  it('two tabs: changes made at once to one conversation are both kept, and each tab sees the other', async () => {
    const tabs = `tabs-${Math.random()}`
    const { db, store: a, saver: saverA, id } = savingStore(10, new BroadcastChannel(tabs))
    a.getState().addMessage(id, { id: 'u1', role: 'user', content: 'Hello', createdAt: 1 })
    await saverA.flush()
    const b = createChatStore()
    await loadInto(b, db)
    const saverB = persistChanges(b, db, 10, new BroadcastChannel(tabs))

    // Before either hears of the other: an answer arrives in tab A, tab B renames.
    a.getState().addMessage(id, { id: 'a1', role: 'assistant', content: 'Hi', createdAt: 2, status: 'done' })
    b.getState().rename(id, 'Greeting')
    await Promise.all([saverA.flush(), saverB.flush()])
    const stored = (await get<Conversation>(id, db)) as Conversation
    expect(stored.title).toBe('Greeting')
    expect(stored.messages.map((m) => m.id)).toEqual(['u1', 'a1'])

    // Both tabs catch up, and a deletion in one reaches the other.
    await vi.waitFor(() => expect(a.getState().conversations[id]?.title).toBe('Greeting'))
    await vi.waitFor(() => expect(b.getState().conversations[id]?.messages.map((m) => m.id)).toEqual(['u1', 'a1']))
    b.getState().remove(id)
    await saverB.flush()
    await vi.waitFor(() => expect(a.getState().conversations[id]).toBeUndefined())
    expect(await entries(db)).toEqual([])
    await Promise.all([saverA.stop(), saverB.stop()])
  })

  it("two tabs: each tab's new version of an answer is kept, as branches, in both tabs", async () => {
    const tabs = `tabs-${Math.random()}`
    const { db, store: a, saver: saverA, id } = savingStore(10, new BroadcastChannel(tabs))
    a.getState().addMessage(id, { id: 'u1', role: 'user', content: 'Hello', createdAt: 1 })
    a.getState().addMessage(id, { id: 'a1', role: 'assistant', content: 'Hi', createdAt: 2, status: 'done' })
    await saverA.flush()
    const b = createChatStore()
    await loadInto(b, db)
    const saverB = persistChanges(b, db, 10, new BroadcastChannel(tabs))

    // Both regenerate the answer before hearing of the other; B also deletes the first one.
    a.getState().addMessage(id, { id: 'a1-A', role: 'assistant', content: 'Hey', createdAt: 3, parentId: 'u1' })
    b.getState().addMessage(id, { id: 'a1-B', role: 'assistant', content: 'Yo', createdAt: 3, parentId: 'u1' })
    b.getState().removeVersion(id, 'a1')
    await Promise.all([saverA.flush(), saverB.flush()])
    const stored = (await get<Conversation>(id, db)) as Conversation
    expect(stored.messages.map((m) => m.id).sort()).toEqual(['a1-A', 'a1-B', 'u1'])
    for (const tab of [a, b]) {
      await vi.waitFor(() =>
        expect(tab.getState().conversations[id]?.messages.map((m) => m.id).sort()).toEqual(['a1-A', 'a1-B', 'u1']),
      )
      const conv = tab.getState().conversations[id] as Conversation
      expect(siblings(conv.messages, 'a1-A').map((m) => m.content).sort()).toEqual(['Hey', 'Yo'])
      expect(activePath(conv)).toHaveLength(2)
    }
    await Promise.all([saverA.stop(), saverB.stop()])
  })

  it('does not write before the saved conversations have been loaded', async () => {
    const db = freshDb()
    const store = createChatStore()
    const saver = persistChanges(store, db, 0)
    store.getState().create({ params: DEFAULT_PARAMS, model: 'm' })
    await saver.stop()
    expect(await entries(db)).toEqual([])
  })
})
