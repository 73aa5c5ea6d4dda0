import { describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS, type Conversation } from '../types'
import { measure, requestMessages, resolveModel } from './generate'

describe('measure', () => {
  it('reports server token counts, tokens/s after the first token, and time to first token', () => {
    const usage = { prompt_tokens: 10, completion_tokens: 101 }
    const m = measure(1000, 1250, 3250, 99, { sawDone: true, finishReason: 'stop', usage, error: null })
    expect(m).toEqual({
      completionTokens: 101,
      approximate: false,
      promptTokens: 10,
      ttftMs: 250,
      tokensPerSecond: 50,
      durationMs: 2250,
    })
  })

  it('counts chunks when stopped before the usage arrived', () => {
    const m = measure(0, 100, 1100, 11, null)
    expect(m).toMatchObject({ completionTokens: 11, approximate: true, tokensPerSecond: 10 })
  })

  it('has no rate or first-token time when nothing arrived', () => {
    expect(measure(0, null, 500, 0, null)).toMatchObject({ completionTokens: 0, ttftMs: null, tokensPerSecond: null })
  })
})

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
      messages: [
        { id: '1', role: 'user', content: 'Hi', createdAt: 0 },
        { id: '2', role: 'assistant', content: '', createdAt: 0, status: 'error' },
        { id: '3', role: 'user', content: 'Hello?', createdAt: 0 },
        { id: '4', role: 'assistant', content: 'Hel', createdAt: 0, status: 'stopped' },
        { id: '5', role: 'user', content: 'Go on', createdAt: 0 },
      ],
    }
    expect(requestMessages(conv)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'user', content: 'Hello?' },
      { role: 'assistant', content: 'Hel' },
      { role: 'user', content: 'Go on' },
    ])
    expect(requestMessages({ ...conv, systemPrompt: '  ' })[0]?.role).toBe('user')
  })
})

describe('resolveModel', () => {
  const listed = [{ id: 'a' }, { id: 'b' }]
  it("takes the conversation's model, else the last chosen, if the server lists it", () => {
    expect(resolveModel(['b', 'a'], listed)).toBe('b')
    expect(resolveModel(['', 'b'], listed)).toBe('b')
    expect(resolveModel(['gone', 'b'], listed)).toBe('b')
  })
  it("falls back to the server's first model", () => {
    expect(resolveModel(['gone', ''], listed)).toBe('a')
  })
  it('tries a named model as is while the list is unknown', () => {
    expect(resolveModel(['', 'x'], [])).toBe('x')
    expect(resolveModel(['', ''], [])).toBe('')
  })
})
