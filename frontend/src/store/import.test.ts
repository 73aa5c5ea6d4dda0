import { describe, expect, it } from 'vitest'
import { exportJson, parseImport } from '../lib/transfer'
import { DEFAULT_PARAMS, type Conversation } from '../types'
import { createChatStore } from './conversations'

const chat = (id: string, title: string, text: string): Conversation => ({
  id,
  title,
  createdAt: 1,
  updatedAt: 2,
  systemPrompt: '',
  params: DEFAULT_PARAMS,
  model: 'm',
  messages: [
    {
      id: `${id}-u`,
      role: 'user',
      content: text,
      createdAt: 1,
      attachments: [{ id: 'f1', name: 'notes.md', size: 12, kind: 'text', text: '# Notes\nHello' }],
      passages: [{ n: 1, file: 'notes.md', index: 0, total: 1, text: '# Notes\nHello' }],
    },
    {
      id: `${id}-a`,
      role: 'assistant',
      content: 'Hi [1]',
      createdAt: 2,
      status: 'done',
      sources: [{ n: 1, file: 'notes.md', index: 0, total: 1, text: '# Notes\nHello' }],
    },
  ],
})

describe('importing a file', () => {
  it('adds nothing the second time: the same file never duplicates chats', () => {
    const store = createChatStore()
    const file = exportJson([chat('a', 'Bread', 'How?'), chat('b', 'Cars', 'Why?')])
    expect(store.getState().importMany(parseImport(file))).toBe(2)
    expect(store.getState().importMany(parseImport(file))).toBe(0)
    expect(Object.keys(store.getState().conversations).sort()).toEqual(['a', 'b'])
  })

  it('still imports a changed conversation with a known id, as a copy', () => {
    const store = createChatStore()
    store.getState().importMany([chat('a', 'Bread', 'How?')])
    expect(store.getState().importMany([chat('a', 'Bread', 'How, exactly?')])).toBe(1)
    const all = Object.values(store.getState().conversations)
    expect(all).toHaveLength(2)
    // Importing the changed one again finds it, although it came in under a new id.
    expect(store.getState().importMany([chat('a', 'Bread', 'How, exactly?')])).toBe(0)
  })

  it('keeps attachments, passages and sources through export and import', () => {
    const [back] = parseImport(exportJson([chat('a', 'Bread', 'How?')]))
    expect(back?.messages[0]?.attachments?.[0]).toMatchObject({ name: 'notes.md', size: 12, kind: 'text' })
    expect(back?.messages[0]?.passages?.[0]).toMatchObject({ n: 1, file: 'notes.md' })
    expect(back?.messages[1]?.sources?.[0]).toMatchObject({ n: 1, text: '# Notes\nHello' })
  })
})
