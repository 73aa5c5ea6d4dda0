import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * An OpenAI-compatible server on 127.0.0.1 whose chat answer is a script: the given pieces of
 * text, one SSE chunk each, `delayMs` apart; its one model has the given `capabilities`. For tests that need exact content and timing (how a
 * table renders as it streams); everything else runs against the real backend.
 */
export async function scriptedServer(pieces: string[], delayMs: number, capabilities = ['chat']) {
  const requests: unknown[] = []
  const cors = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'authorization, content-type, x-conversation-id',
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  }
  const chunk = (res: ServerResponse, body: object) => res.write(`data: ${JSON.stringify(body)}\n\n`)
  const base = { id: 'chatcmpl-scripted', object: 'chat.completion.chunk', created: 0, model: 'scripted' }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'OPTIONS') return res.writeHead(204, cors).end()
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { ...cors, 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ object: 'list', data: [{ id: 'scripted', object: 'model', created: 0, owned_by: 'e2e', capabilities }] }))
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return res.writeHead(404, cors).end()
    let body = ''
    for await (const part of req) body += String(part)
    requests.push(JSON.parse(body))
    res.writeHead(200, { ...cors, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    chunk(res, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })
    for (const piece of pieces) {
      await new Promise((r) => setTimeout(r, delayMs))
      if (res.destroyed) return
      chunk(res, { ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })
    }
    chunk(res, { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })
    chunk(res, { ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: pieces.length, total_tokens: 12 + pieces.length } })
    res.end('data: [DONE]\n\n')
  }

  const server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
