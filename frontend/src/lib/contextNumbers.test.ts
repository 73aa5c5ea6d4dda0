import { describe, expect, it } from 'vitest'
import { contextNumbers } from './contextNumbers'

describe('contextNumbers', () => {
  it("reads this server's (and vLLM's) context_length_exceeded message", () => {
    expect(
      contextNumbers(
        "This model's maximum context length is 8192 tokens. However, you requested 9224 tokens (8200 in the prompt + 1024 for the completion). Shorten the prompt or lower max_tokens.",
      ),
    ).toEqual({ max: 8192, total: 9224, prompt: 8200, completion: 1024 })
    expect(
      contextNumbers("This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (9000 in the prompt)."),
    ).toEqual({ max: 8192, total: 9000, prompt: 9000 })
    expect(
      contextNumbers(
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).",
      ),
    ).toEqual({ max: 4096, total: 5000, prompt: 4000 })
  })

  it('gives null for a message without the numbers', () => {
    expect(contextNumbers('Prompt too long')).toBeNull()
  })
})
