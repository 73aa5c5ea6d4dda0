import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'
import { merge, newChange, recordChange } from './merge'

const msg = (id: string, content = id): Message => ({ id, role: 'user', content, createdAt: 1 })
const conv = (messages: Message[], title = 't'): Conversation => ({
  id: 'c',
  title,
  createdAt: 1,
  updatedAt: 1,
  systemPrompt: '',
  params: DEFAULT_PARAMS,
  model: 'm',
  messages,
})

describe('merge (two tabs writing one conversation)', () => {
  it("takes only this tab's fields and messages; keeps the other tab's", () => {
    const base = conv([msg('1'), msg('2')])
    // This tab: renamed, edited message 2, removed nothing, added 3.
    const mine = { ...base, title: 'Mine', messages: [base.messages[0] as Message, msg('2', 'edited'), msg('3')] }
    const change = newChange()
    recordChange(change, base, mine)
    expect([...change.fields]).toEqual(['title'])
    expect([...change.messages].sort()).toEqual(['2', '3'])
    // Meanwhile the other tab stored: new system prompt, message 4.
    const stored = { ...base, systemPrompt: 'Theirs', messages: [...base.messages, msg('4')] }
    const merged = merge(stored, mine, change)
    expect(merged).toMatchObject({ title: 'Mine', systemPrompt: 'Theirs' })
    expect(merged.messages.map((m) => `${m.id}:${m.content}`)).toEqual(['1:1', '2:edited', '4:4', '3:3'])
  })

  it('a truncation (regenerate, edit and resend) removes only what this tab removed', () => {
    const base = conv([msg('1'), msg('2'), msg('3')])
    const change = newChange()
    recordChange(change, base, { ...base, messages: base.messages.slice(0, 1) })
    expect([...change.removed].sort()).toEqual(['2', '3'])
    const merged = merge({ ...base, messages: [...base.messages, msg('4')] }, base, change)
    expect(merged.messages.map((m) => m.id)).toEqual(['1', '4'])
  })
})
