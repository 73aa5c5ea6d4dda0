import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'
import { siblings, withoutVersion, withParents } from './branches'
import { differs, merge, newChange, recordChange } from './merge'

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

  it("a version this tab deleted goes, unless another tab's messages follow from it", () => {
    // u1 → a1 → u2 → a2, and a second version of u2 (u2b → a2b) this tab deletes.
    const tree = (...extra: Message[]): Message[] => [
      msg('u1'),
      { ...msg('a1'), parentId: 'u1' },
      { ...msg('u2'), parentId: 'a1' },
      { ...msg('a2'), parentId: 'u2' },
      { ...msg('u2b'), parentId: 'a1' },
      { ...msg('a2b'), parentId: 'u2b' },
      ...extra,
    ]
    const base = { ...conv(tree()), current: 'a2b' }
    const change = newChange()
    const mine = withoutVersion(base, 'u2b')
    recordChange(change, base, mine)
    expect([...change.removed].sort()).toEqual(['a2b', 'u2b'])
    expect(mine.current).toBe('u2')
    // The other tab meanwhile answered on the first version: kept.
    const elsewhere = merge({ ...base, messages: tree({ ...msg('u3'), parentId: 'a2' }) }, mine, change)
    expect(elsewhere.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3'])
    expect(elsewhere.current).toBe('u2')
    // ... or on the version this tab deleted: that branch stays whole rather than cut loose.
    const inside = merge({ ...base, messages: tree({ ...msg('u3b'), parentId: 'a2b' }) }, mine, change)
    expect(inside.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u2b', 'a2b', 'u3b'])
  })

  it("two tabs' new versions of the same message are both kept", () => {
    const base = conv([msg('u1'), { ...msg('a1'), parentId: 'u1' }])
    const change = newChange()
    const mine = { ...base, messages: [...base.messages, { ...msg('a1-mine'), parentId: 'u1' }], current: 'a1-mine' }
    recordChange(change, base, mine)
    const stored = { ...base, messages: [...base.messages, { ...msg('a1-theirs'), parentId: 'u1' }], current: 'a1-theirs' }
    const merged = merge(stored, mine, change)
    expect(merged.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'a1-theirs', 'a1-mine'])
    expect(siblings(merged.messages, 'a1').map((m) => m.id)).toEqual(['a1', 'a1-theirs', 'a1-mine'])
    expect(merged.current).toBe('a1-mine')
  })

  it("keeps this tab's answer with its tool calls and chat tools, and the other tab's", () => {
    const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'get_time', arguments: '{}' } })
    const answer = (id: string): Message => ({ ...msg(id, ''), role: 'assistant', parentId: 'u1', toolCalls: [call(`call_${id}`)] })
    const base = conv([msg('u1')])
    const tools = [{ type: 'function' as const, function: { name: 'get_time' } }]
    const mine = { ...base, tools, toolChoice: 'required' as const, messages: [...base.messages, answer('a-mine')] }
    const change = newChange()
    recordChange(change, base, mine)
    expect([...change.fields].sort()).toEqual(['toolChoice', 'tools'])
    const stored = { ...base, title: 'Theirs', messages: [...base.messages, answer('a-theirs')] }
    const merged = merge(stored, mine, change)
    expect(merged).toMatchObject({ title: 'Theirs', tools, toolChoice: 'required' })
    expect(merged.messages.map((m) => m.toolCalls?.[0]?.id)).toEqual([undefined, 'call_a-theirs', 'call_a-mine'])
  })

  it('a conversation stored flat (before branches) gets its parents when merged', () => {
    const flat = conv([msg('1'), msg('2')])
    const mine = { ...flat, messages: [...withParents(flat.messages), { ...msg('3'), parentId: '2' }] }
    const change = newChange()
    recordChange(change, { ...flat, messages: withParents(flat.messages) }, mine)
    const merged = merge(flat, mine, change)
    expect(merged.messages.map((m) => m.parentId)).toEqual([null, '1', '2'])
  })
})

describe('differs (whether what another tab stored must be shown here)', () => {
  const streaming: Message = { id: 'a', role: 'assistant', content: 'The', createdAt: 1, status: 'streaming' }
  const mine = conv([msg('q'), streaming])

  it('sees an answer another tab finished or went on writing, not only new messages', () => {
    expect(differs(conv([msg('q'), { ...streaming }]), mine)).toBe(false)
    // The other tab finished it: this tab must stop showing it half-written with a Stop button.
    expect(differs(conv([msg('q'), { ...streaming, content: 'The end.', status: 'done' }]), mine)).toBe(true)
    expect(differs(conv([msg('q'), { ...streaming, status: 'stopped' }]), mine)).toBe(true)
    expect(differs(conv([msg('q'), { ...streaming, content: 'The sea' }]), mine)).toBe(true)
    expect(differs(conv([msg('q'), streaming, msg('q2')]), mine)).toBe(true)
    expect(differs(conv([msg('q'), streaming], 'Renamed'), mine)).toBe(true)
  })
})
