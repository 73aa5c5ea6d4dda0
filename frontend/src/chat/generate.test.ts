import { describe, expect, it } from 'vitest'
import { withParents } from '../store/branches'
import { DEFAULT_PARAMS, type Conversation } from '../types'
import { outcome, requestMessages } from './generate'
import { NO_TOOL_RESULT } from './toolCalls'

describe('requestMessages', () => {
  it('puts the system prompt first and leaves out answers that failed before any text', () => {
    const conv: Conversation = {
      id: 'c',
      title: '',
      createdAt: 0,
      updatedAt: 0,
      systemPrompt: 'Be brief.',
      params: DEFAULT_PARAMS,
      model: 'm',
      messages: withParents([
        { id: '1', role: 'user', content: 'Hi', createdAt: 0 },
        { id: '2', role: 'assistant', content: '', createdAt: 0, status: 'error' },
        { id: '3', role: 'user', content: 'Hello?', createdAt: 0 },
        { id: '4', role: 'assistant', content: 'Hel', createdAt: 0, status: 'stopped' },
        { id: '5', role: 'user', content: 'Go on', createdAt: 0 },
        // Another branch: not sent.
        { id: '6', role: 'user', content: 'Hello again', createdAt: 0, parentId: '2' },
      ]),
    }
    expect(requestMessages(conv, '5')).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'user', content: 'Hello?' },
      { role: 'assistant', content: 'Hel' },
      { role: 'user', content: 'Go on' },
    ])
    expect(requestMessages(conv, '6').map((m) => m.content)).toEqual(['Be brief.', 'Hi', 'Hello again'])
    expect(requestMessages({ ...conv, systemPrompt: '  ' }, '5')[0]?.role).toBe('user')
    // Earlier answers go back without their reasoning; one that is all reasoning is left out.
    const reasoned = withParents([
      { id: '6', role: 'assistant' as const, content: '<think>hmm</think>Sure.', reasoning: 'more', createdAt: 0 },
      { id: '7', role: 'assistant' as const, content: '<think>only thinking', createdAt: 0, status: 'stopped' as const },
    ])
    expect(requestMessages({ ...conv, messages: reasoned }, '7')).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'assistant', content: 'Sure.' },
    ])
  })

  it("sends an answer's tool calls back, each answered by a tool message, so the history stays valid", () => {
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }
    const messages = withParents([
      { id: '1', role: 'user' as const, content: 'Weather in Paris?', createdAt: 0 },
      { id: '2', role: 'assistant' as const, content: '', toolCalls: [call], finishReason: 'tool_calls', createdAt: 0 },
      { id: '3', role: 'user' as const, content: 'And now?', createdAt: 0 },
    ])
    const conv: Conversation = { id: 'c', title: '', createdAt: 0, updatedAt: 0, systemPrompt: '', params: DEFAULT_PARAMS, model: 'm', messages }
    expect(requestMessages(conv, '3')).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: 'call_1', content: NO_TOOL_RESULT },
      { role: 'user', content: 'And now?' },
    ])
  })
})

describe('outcome', () => {
  const result = { sawDone: true, finishReason: 'stop', usage: null, error: null }
  it('is done when the stream ended with [DONE] or a finish reason', () => {
    expect(outcome(result, true)).toEqual({ status: 'done', finishReason: 'stop' })
    expect(outcome({ ...result, sawDone: false }, true).status).toBe('done')
    // An answer that only called tools ended normally: not an error, not cut.
    expect(outcome({ ...result, finishReason: 'tool_calls' }, true)).toEqual({ status: 'done', finishReason: 'tool_calls' })
  })
  it('is interrupted when the body closed without either, or an error event came after some text', () => {
    const cut = outcome({ ...result, sawDone: false, finishReason: null }, true)
    expect(cut).toMatchObject({ status: 'interrupted', error: { kind: 'interrupted' } })
    const failed = outcome({ ...result, error: { kind: 'server', message: 'boom' } }, false)
    expect(failed).toMatchObject({ status: 'error', error: { kind: 'server', message: 'boom' } })
  })
})
