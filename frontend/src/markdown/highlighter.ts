export interface HighlightRequest {
  id: number
  code: string
  language: string
}

export interface HighlightReply {
  id: number
  /** HTML pieces (see highlightPieces), or null for a language highlight.js does not know. */
  result: string[] | null
}

let worker: Worker | null = null
let nextId = 0
const waiting = new Map<number, (result: string[] | null) => void>()

// Switching back to a conversation does not highlight its code again.
const cache = new Map<string, string[] | null>()
const CACHE_SIZE = 64

function remember(key: string, result: string[] | null): string[] | null {
  cache.set(key, result)
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string)
  return result
}

function inWorker(request: Omit<HighlightRequest, 'id'>): Promise<string[] | null> {
  worker ??= new Worker(new URL('./highlight.worker.ts', import.meta.url), { type: 'module' })
  worker.onmessage = (e: MessageEvent<HighlightReply>) => {
    waiting.get(e.data.id)?.(e.data.result)
    waiting.delete(e.data.id)
  }
  const id = nextId++
  return new Promise((resolve) => {
    waiting.set(id, resolve)
    worker?.postMessage({ id, ...request } satisfies HighlightRequest)
  })
}

/**
 * Highlights code in a worker; where there are no workers (unit tests under Node), in this
 * thread after the current task. Resolves to null for a language highlight.js does not know.
 */
export async function highlight(code: string, language: string): Promise<string[] | null> {
  const key = `${language}\n${code}`
  if (cache.has(key)) return cache.get(key) ?? null
  const request = { code, language }
  if (typeof Worker !== 'undefined') return remember(key, await inWorker(request))
  const { highlightPieces } = await import('./highlight')
  return remember(key, highlightPieces(code, language))
}
