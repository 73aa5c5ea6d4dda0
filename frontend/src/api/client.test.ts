import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_PARAMS } from '../types'
import { ApiError, apiUrl, chatModels, listModels, readChatStream, resumeChat, stopChat, streamChat } from './client'

const enc = new TextEncoder()

/** A body delivered in the given byte pieces, like a network would, optionally failing at the end. */
function bytes(pieces: (string | Uint8Array<ArrayBuffer>)[], failWith?: Error): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream({
    pull(controller) {
      const next = pieces.shift()
      if (next !== undefined) controller.enqueue(typeof next === 'string' ? enc.encode(next) : next)
      else if (failWith) controller.error(failWith)
      else controller.close()
    },
  })
}

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`
const usage = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`

async function collect(body: ReadableStream<BufferSource>) {
  const deltas: string[] = []
  const result = await readChatStream(body, (d) => deltas.push(d))
  return { deltas, result }
}

describe('readChatStream', () => {
  it('emits deltas in order and ends on [DONE], with finish reason and usage', async () => {
    const { deltas, result } = await collect(
      bytes([chunk('Hel'), chunk('lo'), chunk('!', 'stop'), usage, 'data: [DONE]\n\n', chunk('after done')]),
    )
    expect(deltas).toEqual(['Hel', 'lo', '!'])
    expect(result).toEqual({
      sawDone: true,
      finishReason: 'stop',
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
      error: null,
    })
  })

  it('tells reasoning deltas (reasoning_content or reasoning) from the answer', async () => {
    const delta = (d: Record<string, string>) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: d }] })}\n\n`
    const parts: [string, string][] = []
    const body = bytes([delta({ reasoning_content: 'Hmm' }), delta({ reasoning: ', France' }), chunk('Paris'), 'data: [DONE]\n\n'])
    await readChatStream(body, (text, part) => parts.push([part, text]))
    expect(parts).toEqual([
      ['reasoning', 'Hmm'],
      ['reasoning', ', France'],
      ['content', 'Paris'],
    ])
  })

  it('passes tool-call pieces on, and "tool_calls" is the finish reason of a normal end', async () => {
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: d, finish_reason: finish }] })}\n\n`
    const first = { index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }
    const rest = { index: 0, function: { arguments: '{"city": "Paris"}' } }
    const body = bytes([
      delta({ role: 'assistant', content: '' }),
      delta({ tool_calls: [first] }),
      delta({ tool_calls: [rest] }),
      delta({}, 'tool_calls'),
      'data: [DONE]\n\n',
    ])
    const pieces: unknown[] = []
    const texts: string[] = []
    const result = await readChatStream(body, (text) => texts.push(text), (piece) => pieces.push(piece))
    expect(pieces).toEqual([first, rest])
    expect(texts).toEqual([])
    expect(result).toMatchObject({ sawDone: true, finishReason: 'tool_calls', error: null })
  })

  it('reassembles events split at any byte, including inside a UTF-8 character', async () => {
    const all = enc.encode(chunk('你好') + chunk('，世界', 'stop') + 'data: [DONE]\n\n')
    for (const size of [1, 2, 3, 7]) {
      const pieces: Uint8Array<ArrayBuffer>[] = []
      for (let i = 0; i < all.length; i += size) pieces.push(all.slice(i, i + size))
      const { deltas, result } = await collect(bytes(pieces))
      expect(deltas.join('')).toBe('你好，世界')
      expect(result.sawDone).toBe(true)
    }
  })

  it('accepts CRLF line endings and ignores comments (keep-alive pings) and empty deltas', async () => {
    const text = chunk('a').replace(/\n/g, '\r\n') + ': ping\n\n' + chunk('') + chunk('b') + 'data: [DONE]\r\n\r\n'
    const { deltas } = await collect(bytes([text]))
    expect(deltas).toEqual(['a', 'b'])
  })

  it('ends cleanly when the connection closes without [DONE]', async () => {
    const { deltas, result } = await collect(bytes([chunk('partial')]))
    expect(deltas).toEqual(['partial'])
    expect(result.sawDone).toBe(false)
    expect(result.finishReason).toBeNull()
    expect(result.error).toBeNull()
  })

  it('returns an error event sent after the stream started, keeping what came before', async () => {
    const error = { error: { message: 'engine crashed', type: 'server_error', param: null, code: 'internal_error' } }
    const { deltas, result } = await collect(bytes([chunk('half'), `data: ${JSON.stringify(error)}\n\n`, 'data: [DONE]\n\n']))
    expect(deltas).toEqual(['half'])
    expect(result.sawDone).toBe(true)
    expect(result.error).toEqual({ kind: 'server', message: 'engine crashed' })
  })

  it('reports a connection dropped mid-stream as interrupted rather than throwing', async () => {
    const { deltas, result } = await collect(bytes([chunk('so far')], new TypeError('network error')))
    expect(deltas).toEqual(['so far'])
    expect(result.error).toEqual({ kind: 'interrupted', message: 'network error' })
  })

  it('skips an event that is not JSON', async () => {
    const { deltas } = await collect(bytes(['data: {not json\n\n', chunk('ok'), 'data: [DONE]\n\n']))
    expect(deltas).toEqual(['ok'])
  })
})

describe('chatModels', () => {
  it('uses the capabilities field when the server sends it', () => {
    const models = [
      { id: 'SmolLM2-135M-Instruct', capabilities: ['chat', 'completions'] },
      { id: 'all-MiniLM-L6-v2', capabilities: ['embeddings'] },
    ]
    expect(chatModels(models).map((m) => m.id)).toEqual(['SmolLM2-135M-Instruct'])
  })
  it('falls back to leaving out embedding models by name', () => {
    const models = [{ id: 'llama' }, { id: 'all-MiniLM-L6-v2' }, { id: 'text-embedding-3-small' }]
    expect(chatModels(models).map((m) => m.id)).toEqual(['llama'])
  })
})

describe('apiUrl', () => {
  it('defaults to same-origin /v1 and tolerates a trailing slash', () => {
    expect(apiUrl('', '/models')).toBe('/v1/models')
    expect(apiUrl('  http://h:8000/v1/ ', '/models')).toBe('http://h:8000/v1/models')
  })
})

// Real HTTP against a small local server: status codes, headers and streamed bodies as a browser sees them.
describe('over HTTP', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void
  const routes = new Map<string, Handler>()
  // Each case has its own base URL, /<case>/v1, so one server can answer each differently.
  const server = createServer((req, res) => {
    const handler = routes.get(req.url?.split('/')[1] ?? '')
    if (handler) handler(req, res)
    else res.writeHead(404).end()
  })
  let origin = ''
  const base = (kase: string) => `${origin}/${kase}/v1`
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const jsonError = (status: number, code: string, message: string, headers: Record<string, string> = {}): Handler =>
    (_req, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers })
      res.end(JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } }))
    }

  async function chatError(kase: string, handler: Handler) {
    routes.set(kase, handler)
    try {
      await streamChat(
        { baseUrl: base(kase), apiKey: 'k' },
        { model: 'm', messages: [{ role: 'user', content: 'hi' }], params: DEFAULT_PARAMS, conversationId: 'c1' },
        () => undefined,
        new AbortController().signal,
      )
    } catch (e) {
      return (e as ApiError).info
    }
    throw new Error('expected an error')
  }

  it('maps 401, 429 (with Retry-After), context length and server errors', async () => {
    expect(await chatError('401', jsonError(401, 'invalid_api_key', 'Incorrect API key'))).toMatchObject({
      kind: 'auth',
      status: 401,
    })
    expect(await chatError('429', jsonError(429, 'rate_limit_exceeded', 'Queue full', { 'Retry-After': '3' }))).toEqual({
      kind: 'rate_limit',
      status: 429,
      message: 'Queue full',
      retryAfterS: 3,
    })
    expect(await chatError('400', jsonError(400, 'context_length_exceeded', 'Too long'))).toMatchObject({
      kind: 'context_length',
    })
    const html: Handler = (_req, res) => res.writeHead(502, { 'Content-Type': 'text/html' }).end('<h1>Bad gateway</h1>')
    expect(await chatError('502', html)).toEqual({ kind: 'server', status: 502, message: 'HTTP 502' })
  })

  it('sends the OpenAI streaming request with the key and conversation id, and streams the answer back', async () => {
    let seen: { auth?: string; conversation?: string; body?: Record<string, unknown> } = {}
    routes.set('stream', (req, res) => {
      let raw = ''
      req.on('data', (d: Buffer) => (raw += d.toString()))
      req.on('end', () => {
        seen = {
          auth: req.headers.authorization,
          conversation: req.headers['x-conversation-id'] as string,
          body: JSON.parse(raw) as Record<string, unknown>,
        }
        res.writeHead(200, { 'Content-Type': 'text/event-stream' })
        res.write(chunk('Hi'))
        setTimeout(() => res.end(chunk(' there', 'stop') + usage + 'data: [DONE]\n\n'), 20)
      })
    })
    const deltas: string[] = []
    const result = await streamChat(
      { baseUrl: base('stream'), apiKey: 'secret' },
      {
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
        params: { ...DEFAULT_PARAMS, seed: 7 },
        conversationId: 'conv-42',
      },
      (d) => deltas.push(d),
      new AbortController().signal,
    )
    expect(result.sawDone).toBe(true)
    expect(deltas.join('')).toBe('Hi there')
    expect(seen.auth).toBe('Bearer secret')
    expect(seen.conversation).toBe('conv-42')
    expect(seen.body).toMatchObject({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      seed: 7,
      max_tokens: DEFAULT_PARAMS.max_tokens,
    })
    // No tools in this chat: neither field is sent.
    expect(seen.body).not.toHaveProperty('tools')
    expect(seen.body).not.toHaveProperty('tool_choice')
  })

  it('sends a stream id as X-Message-Id, and resumes (GET) and stops (DELETE) the answer kept under it', async () => {
    const seen: string[] = []
    routes.set('kept', (req, res) => {
      seen.push(`${req.method} ${req.url} ${String(req.headers['x-conversation-id'])} ${String(req.headers['x-message-id'])}`)
      if (req.method === 'DELETE') res.writeHead(204).end()
      else if (req.url?.endsWith('/gone')) jsonError(404, 'stream_not_found', 'No longer kept')(req, res)
      else res.writeHead(200, { 'Content-Type': 'text/event-stream' }).end(chunk('Hi', 'stop') + 'data: [DONE]\n\n')
    })
    const cfg = { baseUrl: base('kept'), apiKey: '' }
    const signal = new AbortController().signal
    await streamChat(cfg, { model: 'm', messages: [], params: DEFAULT_PARAMS, conversationId: 'c 1', streamId: 's1' }, () => undefined, signal)
    const { deltas, result } = await collect(await resumeChat(cfg, 'c 1', 's1', signal))
    expect([deltas, result.sawDone]).toEqual([['Hi'], true])
    await stopChat(cfg, 'c 1', 's1')
    await expect(resumeChat(cfg, 'c 1', 'gone', signal)).rejects.toMatchObject({ info: { status: 404 } })
    expect(seen).toEqual([
      'POST /kept/v1/chat/completions c 1 s1',
      'GET /kept/v1/stream/c%201/s1 c 1 undefined',
      'DELETE /kept/v1/stream/c%201/s1 c 1 undefined',
      'GET /kept/v1/stream/c%201/gone c 1 undefined',
    ])
  })

  it('sends the chat\'s tools with its tool_choice ("auto" when none was chosen)', async () => {
    const bodies: Record<string, unknown>[] = []
    routes.set('tools', (req, res) => {
      let raw = ''
      req.on('data', (d: Buffer) => (raw += d.toString()))
      req.on('end', () => {
        bodies.push(JSON.parse(raw) as Record<string, unknown>)
        res.writeHead(200, { 'Content-Type': 'text/event-stream' }).end('data: [DONE]\n\n')
      })
    })
    const tools = [{ type: 'function' as const, function: { name: 'get_time' } }]
    const send = (extra: object) =>
      streamChat(
        { baseUrl: base('tools'), apiKey: '' },
        { model: 'm', messages: [{ role: 'user', content: 'hi' }], params: DEFAULT_PARAMS, conversationId: 'c', ...extra },
        () => undefined,
        new AbortController().signal,
      )
    await send({ tools, toolChoice: 'required' })
    await send({ tools })
    await send({ tools: [], toolChoice: 'required' })
    expect(bodies[0]).toMatchObject({ tools, tool_choice: 'required' })
    expect(bodies[1]).toMatchObject({ tools, tool_choice: 'auto' })
    expect(bodies[2]).not.toHaveProperty('tools')
    expect(bodies[2]).not.toHaveProperty('tool_choice')
  })

  it('a web page where the API should be (a base URL without /v1) is "not_api", not a JSON parse error', async () => {
    // Like the chat page's own server: index.html for any GET, 405 for a POST it does not route.
    routes.set('site', (req, res) => {
      if (req.method === 'GET') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><p>LocalChat')
      else res.writeHead(405, { 'Content-Type': 'text/plain' }).end('Method Not Allowed')
    })
    await expect(listModels({ baseUrl: `${origin}/site`, apiKey: '' })).rejects.toMatchObject({
      info: { kind: 'not_api', status: 200, message: `${origin}/site/models answered HTTP 200 with text/html, not the API's JSON` },
    })
    expect(await chatError('site', routes.get('site') as Handler)).toMatchObject({ kind: 'not_api', status: 405 })
  })

  it('a route this server or another one does not have (a base URL without /v1) is "not_api"', async () => {
    // This backend: a JSON 404 `unknown_url` naming the /v1 route. Another framework: {"detail": ...}.
    routes.set('ours', jsonError(404, 'unknown_url', 'No route /models: did you mean /v1/models?'))
    routes.set('other', (_req, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"detail":"Not Found"}'))
    for (const name of ['ours', 'other']) {
      await expect(listModels({ baseUrl: `${origin}/${name}`, apiKey: '' })).rejects.toMatchObject({
        info: { kind: 'not_api', status: 404 },
      })
    }
    // A wrong model is the API's own 404, not a wrong address.
    const wrongModel = jsonError(404, 'model_not_found', 'The model m does not exist.')
    expect(await chatError('model', wrongModel)).toMatchObject({ kind: 'bad_request', status: 404 })
  })

  it('says "unreachable" when nothing listens', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    await expect(listModels({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: '' })).rejects.toMatchObject({
      info: { kind: 'unreachable' },
    })
  })

  it('throws on abort (the Stop button) instead of reporting an error', async () => {
    routes.set('slow', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write(chunk('first'))
    })
    const controller = new AbortController()
    const run = streamChat(
      { baseUrl: base('slow'), apiKey: '' },
      { model: 'm', messages: [], params: DEFAULT_PARAMS, conversationId: 'c1' },
      () => controller.abort(),
      controller.signal,
    )
    await expect(run).rejects.toMatchObject({ name: 'AbortError' })
  })
})
