import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Attachment, type Conversation } from '../types'
import { requestMessages } from './generate'
import { choosePassages, WHOLE_FILE_TOKENS } from './passages'

const file = (name: string, text: string): Attachment => ({ id: name, name, size: text.length, kind: 'text', text })

describe('documents in the request', () => {
  it('small files go whole, numbered in order, without asking the server anything', async () => {
    const passages = await choosePassages(
      [file('a.md', '# A\nalpha'), file('b.py', 'print("b")')],
      'What is in them?',
      new AbortController().signal,
    )
    expect(passages).toEqual([
      { n: 1, file: 'a.md', index: 0, total: 1, text: '# A\nalpha' },
      { n: 2, file: 'b.py', index: 0, total: 1, text: 'print("b")' },
    ])
    expect(WHOLE_FILE_TOKENS).toBeGreaterThan(0)
  })

  it('a user message goes with its passages; its answer goes back as written', () => {
    const passages = [{ n: 1, file: 'a.md', index: 0, total: 1, text: 'alpha' }]
    const conv: Conversation = {
      id: 'c',
      title: '',
      createdAt: 0,
      updatedAt: 0,
      systemPrompt: '',
      params: DEFAULT_PARAMS,
      model: 'm',
      messages: [
        { id: 'u', role: 'user', content: 'What?', createdAt: 0, attachments: [file('a.md', 'alpha')], passages, parentId: null },
        { id: 'a', role: 'assistant', content: 'Alpha [1].', createdAt: 1, status: 'done', sources: passages, parentId: 'u' },
        { id: 'u2', role: 'user', content: 'And then?', createdAt: 2, parentId: 'a' },
      ],
    }
    const sent = requestMessages(conv, 'u2')
    const withImage = requestMessages(
      {
        ...conv,
        messages: [
          {
            id: 'i',
            role: 'user',
            content: 'What is this?',
            createdAt: 0,
            attachments: [{ id: 'p', name: 'p.png', size: 4, kind: 'image', text: '', dataUrl: 'data:image/png;base64,AAAA' }],
          },
        ],
      },
      'i',
    )
    expect(withImage).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      },
    ])
    expect(sent[0]?.content).toMatch(/^Answer using the documents below[\s\S]*\[1\] a\.md\n"""\nalpha\n"""\n\nQuestion: What\?$/)
    expect(sent.slice(1)).toEqual([
      { role: 'assistant', content: 'Alpha [1].' },
      { role: 'user', content: 'And then?' },
    ])
  })
})
