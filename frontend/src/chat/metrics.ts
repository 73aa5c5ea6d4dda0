import type { StreamResult } from '../api/client'
import type { Metrics } from '../types'

export function measure(
  startedAt: number,
  firstTokenAt: number | null,
  endedAt: number,
  chunks: number,
  result: StreamResult | null,
): Metrics {
  const tokens = result?.usage?.completion_tokens ?? chunks
  const genSeconds = firstTokenAt === null ? 0 : (endedAt - firstTokenAt) / 1000
  return {
    completionTokens: tokens,
    approximate: !result?.usage,
    ...(result?.usage ? { promptTokens: result.usage.prompt_tokens } : {}),
    ttftMs: firstTokenAt === null ? null : firstTokenAt - startedAt,
    // The first token ends the wait; the rate counts the ones generated after it.
    tokensPerSecond: tokens > 1 && genSeconds > 0 ? (tokens - 1) / genSeconds : null,
    durationMs: endedAt - startedAt,
  }
}

/** One answer's figures after it was continued (`more`): counts and times add up. */
export function addMetrics(before: Metrics, more: Metrics): Metrics {
  return {
    ...more,
    completionTokens: before.completionTokens + more.completionTokens,
    approximate: before.approximate || more.approximate,
    ttftMs: before.ttftMs,
    durationMs: before.durationMs + more.durationMs,
  }
}

/** Times one answer: from its request, to its first chunk, to its end, counting the chunks. */
export function streamClock() {
  let startedAt = performance.now()
  let firstChunkAt: number | null = null
  let chunks = 0
  return {
    /** The request goes out now (choosing the model may have taken a request of its own). */
    start: () => {
      startedAt = performance.now()
    },
    chunk: () => {
      firstChunkAt ??= performance.now()
      chunks += 1
    },
    /** `null`: stopped before the server sent its usage, so the chunks are the count. */
    metrics: (result: StreamResult | null) => measure(startedAt, firstChunkAt, performance.now(), chunks, result),
  }
}
