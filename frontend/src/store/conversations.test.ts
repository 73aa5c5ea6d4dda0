import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'
import { createChatStore, folderNames, matchesQuery, sidebarGroups, sortedConversations, titleFrom } from './conversations'
import { savedConversation } from '../testing/conversations'

const user = (id: string, content: string): Message => ({ id, role: 'user', content, createdAt: 1 })
const answer = (id: string, content: string, status: Message['status'] = 'done'): Message => ({
  id,
  role: 'assistant',
  content,
  createdAt: 2,
  status,
})

function storeWithChat() {
  const store = createChatStore()
  const id = store.getState().create({ params: DEFAULT_PARAMS, model: 'm' })
  return { store, id, conv: () => store.getState().conversations[id] as Conversation }
}

describe('conversation store', () => {
  it('creates and selects a conversation; the first user message names it', () => {
    const { store, id, conv } = storeWithChat()
    expect(store.getState().activeId).toBe(id)
    store.getState().addMessage(id, user('u1', '  How do\n I bake   bread?  '))
    store.getState().addMessage(id, user('u2', 'Another question'))
    expect(conv().title).toBe('How do I bake bread?')
  })

  it('truncates long titles', () => {
    expect(titleFrom('x'.repeat(100))).toHaveLength(60)
    expect(titleFrom('x'.repeat(100)).endsWith('…')).toBe(true)
  })

  it('renames, ignoring an empty name', () => {
    const { store, id, conv } = storeWithChat()
    store.getState().rename(id, 'Bread')
    store.getState().rename(id, '   ')
    expect(conv().title).toBe('Bread')
  })

  it('updates one message without touching the others or the sidebar order', () => {
    const { store, id, conv } = storeWithChat()
    store.getState().addMessage(id, user('u1', 'hi'))
    store.getState().addMessage(id, answer('a1', '', 'streaming'))
    const before = conv()
    store.getState().updateMessage(id, 'a1', { content: 'Hello' })
    expect(conv().messages[1]?.content).toBe('Hello')
    expect(conv().messages[0]).toBe(before.messages[0])
    expect(conv().updatedAt).toBe(before.updatedAt)
  })

  it('adds each message after the end of the branch shown, or after the parent it names', () => {
    const { store, id, conv } = storeWithChat()
    for (const m of [user('u1', 'a'), answer('a1', 'b'), user('u2', 'c')]) store.getState().addMessage(id, m)
    expect(conv().messages.map((m) => m.parentId)).toEqual([null, 'u1', 'a1'])
    store.getState().addMessage(id, { ...user('u1b', 'a, edited'), parentId: null })
    expect(conv().messages.at(-1)?.parentId).toBeNull()
    expect(conv().current).toBe('u1b')
  })

  it('removes a conversation and clears the selection', () => {
    const { store, id } = storeWithChat()
    store.getState().remove(id)
    expect(store.getState().conversations).toEqual({})
    expect(store.getState().activeId).toBeNull()
  })

  it('loads saved conversations; an answer left streaming by a closed page becomes interrupted', () => {
    const store = createChatStore()
    const saved = savedConversation('c1', [user('u1', 'q'), answer('a1', 'half an ans', 'streaming')])
    store.getState().load([saved], 'c1')
    expect(store.getState().loaded).toBe(true)
    expect(store.getState().activeId).toBe('c1')
    expect(store.getState().conversations.c1?.messages[1]?.status).toBe('interrupted')
    store.getState().load([saved], 'gone')
    expect(store.getState().activeId).toBeNull()
  })

  it('imports without overwriting: a conversation already present comes in as a copy', () => {
    const { store, id, conv } = storeWithChat()
    store.getState().rename(id, 'Mine')
    const copy = { ...conv(), title: 'From file' }
    expect(store.getState().importMany([copy, { ...copy, id: 'new' }])).toBe(2)
    const titles = Object.values(store.getState().conversations).map((c) => c.title)
    expect(titles.sort()).toEqual(['From file', 'From file', 'Mine'])
    expect(store.getState().conversations[id]?.title).toBe('Mine')
  })

  it('sorts by last activity and searches titles and message text, case-insensitively', () => {
    const conv = (id: string, updatedAt: number, title: string, text: string): Conversation => ({
      id,
      title,
      createdAt: 0,
      updatedAt,
      systemPrompt: '',
      params: DEFAULT_PARAMS,
      model: '',
      messages: [user(`${id}-u`, text)],
    })
    const all = { a: conv('a', 1, 'Bread', 'flour'), b: conv('b', 3, 'Cars', 'Engines'), c: conv('c', 2, 'x', 'y') }
    expect(sortedConversations(all).map((c) => c.id)).toEqual(['b', 'c', 'a'])
    expect(matchesQuery(all.a, 'BREAD')).toBe(true)
    expect(matchesQuery(all.b, 'engine')).toBe(true)
    expect(matchesQuery(all.b, 'flour')).toBe(false)
    expect(matchesQuery(all.c, '  ')).toBe(true)
  })
})

describe('sidebar groups', () => {
  const now = new Date(2026, 11, 7, 12)
  const at = (id: string, updatedAt: number, extra: Partial<Conversation> = {}): Conversation => ({
    ...savedConversation(id, [user(`${id}-q`, `about ${id}`)]),
    title: id,
    updatedAt,
    ...extra,
  })
  const today = now.getTime() - 1000
  const lastWeek = now.getTime() - 3 * 24 * 3600 * 1000
  const all = Object.fromEntries(
    [
      at('plain', today),
      at('old', lastWeek),
      at('pinned', lastWeek, { pinned: true }),
      at('work', today, { folder: 'Work' }),
      at('books', today, { folder: 'Books' }),
      at('gone', today, { archived: true, pinned: true }),
    ].map((c) => [c.id, c]),
  )
  const shape = (groups: ReturnType<typeof sidebarGroups>) =>
    groups.map((g) => [g.key, g.list.map((c) => c.id)] as const)

  it('pinned first, then folders by name, then by age; archived only when asked for', () => {
    expect(shape(sidebarGroups(all, '', now, false))).toEqual([
      ['pinned', ['pinned']],
      ['folder:Books', ['books']],
      ['folder:Work', ['work']],
      ['today', ['plain']],
      ['previous7', ['old']],
    ])
    expect(shape(sidebarGroups(all, '', now, true)).at(-1)).toEqual(['archived', ['gone']])
    // A search finds archived conversations too.
    expect(shape(sidebarGroups(all, 'gone', now, false))).toEqual([['archived', ['gone']]])
    expect(folderNames(all)).toEqual(['Books', 'Work'])
  })

  it('Undo puts a deleted conversation back, an answer it was writing no longer streaming', () => {
    const { store, id, conv } = storeWithChat()
    store.getState().addMessage(id, user('q', 'Hi'))
    store.getState().addMessage(id, answer('a', 'Hel', 'streaming'))
    const deleted = conv()
    store.getState().remove(id)
    expect(store.getState().conversations[id]).toBeUndefined()
    store.getState().restore(deleted)
    expect(conv().messages.map((m) => m.status)).toEqual([undefined, 'interrupted'])
    expect(store.getState().activeId).toBe(id)
  })
})
