import { describe, expect, it } from 'vitest'
import { exportJson, parseImport } from '../lib/transfer'
import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'
import { activePath, neighbourVersion, pathTo, siblings, versionsOnPath, withParents } from './branches'
import { createChatStore } from './conversations'
import { savedConversation } from '../testing/conversations'

const user = (id: string, parentId?: string | null): Message => ({
  id,
  role: 'user',
  content: id,
  createdAt: 1,
  ...(parentId !== undefined ? { parentId } : {}),
})
const answer = (id: string, parentId?: string | null): Message => ({
  ...user(id, parentId),
  role: 'assistant',
  status: 'done',
})

/** Three turns, added as the page adds them (each after the end of the branch shown). */
function threeTurns() {
  const store = createChatStore()
  const id = store.getState().create({ params: DEFAULT_PARAMS, model: 'm' })
  for (const m of [user('u1'), answer('a1'), user('u2'), answer('a2'), user('u3'), answer('a3')]) {
    store.getState().addMessage(id, m)
  }
  const conv = () => store.getState().conversations[id] as Conversation
  const shown = () => activePath(conv()).map((m) => m.id)
  const version = (messageId: string) => versionsOnPath(conv(), activePath(conv())).get(messageId)
  return { store, id, conv, shown, version }
}

describe('branches: edit, regenerate, switch, delete', () => {
  it('editing the first of three turns keeps the original turns as a branch', () => {
    const { store, id, conv, shown, version } = threeTurns()
    // editAndResend: a new version of u1 (same parent), then its answer.
    store.getState().addMessage(id, user('u1b', null))
    store.getState().addMessage(id, answer('a1b', 'u1b'))
    expect(conv().messages).toHaveLength(8)
    expect(shown()).toEqual(['u1b', 'a1b'])
    expect(version('u1b')).toEqual({ version: 2, versions: 2 })
    expect(version('a1b')).toEqual({ version: 1, versions: 1 })

    // ‹ back: the original first message and everything that followed it.
    store.getState().showVersion(id, neighbourVersion(conv().messages, 'u1b', -1) as string)
    expect(shown()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3'])
    expect(version('u1')).toEqual({ version: 1, versions: 2 })
    expect(neighbourVersion(conv().messages, 'u1', -1)).toBeNull()
    store.getState().showVersion(id, neighbourVersion(conv().messages, 'u1', 1) as string)
    expect(shown()).toEqual(['u1b', 'a1b'])
  })

  it('regenerating an answer adds a version beside it; a new message follows the branch shown', () => {
    const { store, id, conv, shown, version } = threeTurns()
    store.getState().addMessage(id, answer('a3b', 'u3'))
    expect(shown()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3b'])
    expect(version('a3b')).toEqual({ version: 2, versions: 2 })
    // Regenerating a middle answer: its version has no follow-up yet; the old one keeps its own.
    store.getState().addMessage(id, answer('a1b', 'u1'))
    expect(shown()).toEqual(['u1', 'a1b'])
    store.getState().addMessage(id, user('u2b'))
    expect(conv().messages.at(-1)?.parentId).toBe('a1b')
    store.getState().showVersion(id, 'a1')
    // The newest version at each step below the chosen one.
    expect(shown()).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3b'])
  })

  it('deleting a version removes what follows it and lands on a neighbour', () => {
    const { store, id, conv, shown } = threeTurns()
    store.getState().addMessage(id, user('u2b', 'a1'))
    store.getState().addMessage(id, answer('a2b', 'u2b'))
    store.getState().removeVersion(id, 'u2')
    expect(conv().messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2b', 'a2b'])
    expect(shown()).toEqual(['u1', 'a1', 'u2b', 'a2b'])
    // The reader was on it: the one before (here none), else the one after.
    store.getState().addMessage(id, user('u2c', 'a1'))
    store.getState().removeVersion(id, 'u2c')
    expect(shown()).toEqual(['u1', 'a1', 'u2b', 'a2b'])
    expect(conv().current).toBe('u2b')
    // The last version of a message: back to its parent's branch.
    store.getState().removeVersion(id, 'u2b')
    expect(shown()).toEqual(['u1', 'a1'])
    store.getState().removeVersion(id, 'missing')
    expect(conv().messages).toHaveLength(2)
  })

  it('a conversation saved before branches (flat) reads as one branch', () => {
    const store = createChatStore()
    const flat = savedConversation('c', [user('u1'), answer('a1'), user('u2'), answer('a2')])
    store.getState().load([flat], 'c')
    const conv = store.getState().conversations.c as Conversation
    expect(conv.messages.map((m) => m.parentId)).toEqual([null, 'u1', 'a1', 'u2'])
    expect(activePath(conv).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2'])
  })

  it('parents must come earlier: a damaged or hostile file cannot loop', () => {
    const mended = withParents([user('a', 'b'), user('b', 'a'), user('c', 'c'), user('d', 'nowhere'), user('e', 'a')])
    expect(mended.map((m) => m.parentId)).toEqual([null, 'a', 'b', 'c', 'a'])
    const unchanged = [user('x', null), answer('y', 'x')]
    expect(withParents(unchanged)).toBe(unchanged)
    expect(pathTo(mended, 'd').map((m) => m.id)).toEqual(['a', 'b', 'c', 'd'])
    expect(siblings(mended, 'b').map((m) => m.id)).toEqual(['b', 'e'])
  })

  it('an unknown current message shows the newest branch', () => {
    const { conv } = threeTurns()
    expect(activePath({ ...conv(), current: 'gone' }).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3'])
    expect(activePath({ ...conv(), messages: [] })).toEqual([])
  })
})

describe('branches in export and import', () => {
  it('round-trips the whole tree and the branch shown', () => {
    const { store, id, conv } = threeTurns()
    store.getState().addMessage(id, user('u1b', null))
    store.getState().addMessage(id, { ...answer('a1b', 'u1b'), finishReason: 'length' })
    store.getState().showVersion(id, 'u1')
    const [back] = parseImport(exportJson([conv()]))
    expect(back).toEqual(conv())

    const other = createChatStore()
    expect(other.getState().importMany([back as Conversation])).toBe(1)
    const imported = other.getState().conversations[id] as Conversation
    expect(activePath(imported).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3'])
    expect(siblings(imported.messages, 'u1')).toHaveLength(2)
  })

  it('an old flat export still imports as one branch', () => {
    const old = JSON.stringify({
      format: 'localchat.conversations',
      version: 1,
      conversations: [{ id: 'x', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }],
    })
    const store = createChatStore()
    store.getState().importMany(parseImport(old))
    const conv = store.getState().conversations.x as Conversation
    expect(activePath(conv).map((m) => m.content)).toEqual(['hi', 'hello'])
    expect(conv.messages.map((m) => m.parentId)).toEqual([null, 'm0'])
  })
})
