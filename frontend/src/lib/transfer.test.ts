import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'
import { exportJson, parseImport } from './transfer'

const conv: Conversation = {
  id: 'c1',
  title: 'Bread',
  createdAt: 1,
  updatedAt: 2,
  systemPrompt: 'Be brief.',
  params: { ...DEFAULT_PARAMS, seed: 42 },
  model: 'SmolLM2-135M-Instruct',
  messages: [
    { id: 'u1', role: 'user', content: 'How?', createdAt: 1 },
    {
      id: 'a1',
      role: 'assistant',
      content: 'Knead.',
      createdAt: 2,
      status: 'stopped',
      model: 'SmolLM2-135M-Instruct',
      metrics: { completionTokens: 2, approximate: true, ttftMs: 120, tokensPerSecond: 30, durationMs: 300 },
    },
  ],
}

describe('export and import', () => {
  it('round-trips conversations', () => {
    expect(parseImport(exportJson([conv]))).toEqual([conv])
  })

  it('keeps the settings side-by-side answers were asked with, known fields only', () => {
    const variant = { model: 'other', temperature: 1.2, seed: null, systemPrompt: 'Rhyme.' }
    const compared = { ...conv, messages: [conv.messages[0] as Message, { ...(conv.messages[1] as Message), variant }] }
    expect(parseImport(exportJson([compared]))).toEqual([compared])
    const [odd] = parseImport(JSON.stringify([{ ...compared, messages: [conv.messages[0], { ...conv.messages[1], variant: { seed: '7', x: 1 } }] }]))
    expect(odd?.messages[1]?.variant).toEqual({})
  })

  it('keeps where a conversation is filed: pinned, archived, its folder', () => {
    const filed = { ...conv, pinned: true, archived: true, folder: 'Kitchen' }
    expect(parseImport(exportJson([filed]))).toEqual([filed])
    const [odd] = parseImport(JSON.stringify([{ ...conv, pinned: 'yes', archived: 1, folder: '  ' }]))
    expect(odd).toEqual(conv)
  })

  it("round-trips tool calls and a chat's tools; files from before them still load", () => {
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'get_time', arguments: '{}' } }
    const withTools: Conversation = {
      ...conv,
      tools: [{ type: 'function', function: { name: 'get_time', description: 'The time' } }],
      toolChoice: 'required',
      messages: [
        conv.messages[0] as Message,
        { id: 'a2', role: 'assistant', content: '', createdAt: 3, status: 'done', finishReason: 'tool_calls', toolCalls: [call] },
      ],
    }
    expect(parseImport(exportJson([withTools]))).toEqual([withTools])
    const [old] = parseImport(exportJson([conv]))
    expect(old).not.toHaveProperty('tools')
    expect(old?.messages[1]).not.toHaveProperty('toolCalls')
    // Malformed ones are dropped, the rest of the conversation kept.
    const [bad] = parseImport(
      JSON.stringify([
        {
          ...withTools,
          tools: [{ type: 'function' }],
          toolChoice: 'always',
          messages: [{ role: 'assistant', content: 'x', toolCalls: [{ id: 1 }, 'x', call] }],
        },
      ]),
    )
    expect(bad).not.toHaveProperty('tools')
    expect(bad).not.toHaveProperty('toolChoice')
    expect(bad?.messages[0]?.toolCalls).toEqual([call])
  })

  it('accepts a bare array and fills in missing optional fields', () => {
    const [c] = parseImport(JSON.stringify([{ id: 'x', messages: [{ role: 'user', content: 'hi' }] }]))
    expect(c).toMatchObject({ id: 'x', title: '', systemPrompt: '', params: DEFAULT_PARAMS })
    expect(c?.messages[0]).toMatchObject({ id: 'm0', role: 'user', content: 'hi' })
  })

  it('keeps only known fields with the right types', () => {
    const [c] = parseImport(
      JSON.stringify([
        {
          id: 'x',
          messages: [
            {
              role: 'assistant',
              content: 'ok',
              status: 'streaming',
              metrics: { completionTokens: 'many' },
              onclick: 'alert(1)',
              error: { kind: 'auth', message: 1 },
            },
          ],
        },
      ]),
    )
    expect(c?.messages[0]).toEqual({ id: 'm0', role: 'assistant', content: 'ok', createdAt: expect.any(Number), status: 'done' })
  })

  it('rejects files that are not an export, saying why', () => {
    expect(() => parseImport('{"foo": 1}')).toThrow('No "conversations" list')
    expect(() => parseImport('[{"id": "a", "messages": [{"role": "system", "content": "x"}]}]')).toThrow(
      'Conversation #1',
    )
    expect(() => parseImport('not json')).toThrow()
  })
})
