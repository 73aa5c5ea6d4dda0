export interface ContextNumbers {
  max: number
  prompt: number
  /** What the answer was allowed (max_tokens); absent when the prompt alone was too long. */
  completion?: number
  total: number
}

/**
 * The numbers in a context_length_exceeded message, as this server and vLLM word it: "maximum
 * context length is 8192 tokens. However, you requested 9000 tokens (8000 in the prompt + 1000
 * for the completion)". Null when the message has no such numbers (another server's wording).
 */
export function contextNumbers(message: string): ContextNumbers | null {
  const max = /maximum context length is (\d+)/i.exec(message)?.[1]
  const total = /requested (\d+) tokens/i.exec(message)?.[1]
  const prompt = /(\d+) (?:tokens )?in the (?:prompt|messages)/i.exec(message)?.[1]
  if (!max || !total || !prompt) return null
  const completion = /(\d+) (?:tokens )?for the completion/i.exec(message)?.[1]
  return { max: Number(max), total: Number(total), prompt: Number(prompt), ...(completion ? { completion: Number(completion) } : {}) }
}
