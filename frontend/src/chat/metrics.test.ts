import { describe, expect, it } from 'vitest'
import { addMetrics, measure } from './metrics'

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

  it('adds a continuation to the answer it continued: tokens and time add up, the first token stays', () => {
    const first = measure(0, 200, 1200, 40, null)
    const more = measure(0, 100, 2100, 80, { sawDone: true, finishReason: 'stop', usage: { prompt_tokens: 60, completion_tokens: 81 }, error: null })
    expect(addMetrics(first, more)).toEqual({
      completionTokens: 121,
      approximate: true,
      promptTokens: 60,
      ttftMs: 200,
      tokensPerSecond: 40,
      durationMs: 3300,
    })
  })
})
