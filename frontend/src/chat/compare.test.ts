// @vitest-environment happy-dom
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { translator } from '../i18n'
import { activePath, siblings } from '../store/branches'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import { DEFAULT_PARAMS } from '../types'
import { comparedColumns, compareStore, defaultSecond, keepAnswer, sendCompared, variantLabel } from './compare'
import { stop } from './generate'

/**
 * A real SSE server: model `slow` writes a word every 50 ms for 2 s, `bad` answers 400, any other
 * writes its name in 3 chunks. It keeps each request's body.
 */
const bodies: { model: string; temperature: number; seed: number | null; messages: { role: string; content: string }[] }[] = []
let open = 0
let mostOpen = 0
let cutShort = 0
const server = createServer((req, res) => void answer(req, res))
async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*' }
  if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end()
  let text = ''
  for await (const part of req) text += String(part)
  const body = JSON.parse(text) as (typeof bodies)[number]
  bodies.push(body)
  if (body.model === 'bad') {
    res.writeHead(400, { ...cors, 'Content-Type': 'application/json' })
    return void res.end(JSON.stringify({ error: { message: 'no such model', type: 'invalid_request_error' } }))
  }
  res.writeHead(200, { ...cors, 'Content-Type': 'text/event-stream' })
  open += 1
  mostOpen = Math.max(mostOpen, open)
  const pieces = body.model === 'slow' ? Array.from({ length: 40 }, () => 'word ') : [body.model, ' says', ' hi']
  for (const piece of pieces) {
    if (res.destroyed) break
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`)
    await new Promise((r) => setTimeout(r, body.model === 'slow' ? 50 : 20))
  }
  open -= 1
  if (res.destroyed) return void (cutShort += 1)
  res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`)
  res.end('data: [DONE]\n\n')
}

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  settingsStore.getState().update({ apiBaseUrl: `http://127.0.0.1:${port}/v1`, apiKey: '', lastModel: 'first' })
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const until = async (done: () => boolean) => {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 20))
  expect(done()).toBe(true)
}
const conv = (id: string) => chatStore.getState().conversations[id]!
const streaming = (id: string) => conv(id).messages.some((m) => m.status === 'streaming')

describe('side by side', () => {
  it('streams two versions of one answer at once, each with its settings; an error in one leaves the other', async () => {
    const convId = chatStore.getState().create({ params: { ...DEFAULT_PARAMS, temperature: 0.3 }, model: 'first' })
    chatStore.getState().patch(convId, { systemPrompt: 'Be brief.' })
    expect(await sendCompared(convId, 'Hello?', [], { model: 'second', temperature: 1.1, seed: 5, systemPrompt: '' })).toBe(true)
    await until(() => !streaming(convId))
    const [question, a, b] = conv(convId).messages
    expect(siblings(conv(convId).messages, a!.id).map((m) => m.id)).toEqual([a!.id, b!.id])
    expect([a!.content, b!.content]).toEqual(['first says hi', 'second says hi'])
    expect([a!.status, b!.status, a!.model, b!.model]).toEqual(['done', 'done', 'first', 'second'])
    // Both requests were open at the same time; each went with its own settings.
    expect(mostOpen).toBe(2)
    const sent = bodies.slice(-2).sort((x, y) => x.model.localeCompare(y.model))
    // A null seed (random) is not sent.
    expect(sent.map((s) => [s.model, s.temperature, s.seed, s.messages[0]?.content])).toEqual([
      ['first', 0.3, undefined, 'Be brief.'],
      ['second', 1.1, 5, 'Hello?'],
    ])
    // In columns until one is kept; that one is then the version shown, the other stays a version.
    const path = activePath(conv(convId))
    expect(comparedColumns(conv(convId), path, compareStore.getState()[convId]).map((m) => m.id)).toEqual([a!.id, b!.id])
    keepAnswer(convId, a!.id)
    expect(compareStore.getState()[convId]).toBeUndefined()
    expect(activePath(conv(convId)).map((m) => m.id)).toEqual([question!.id, a!.id])
    expect(conv(convId).messages).toHaveLength(3)

    // A failing column says why; the other answers all the same.
    await sendCompared(convId, 'Again?', [], { model: 'bad' })
    await until(() => !streaming(convId))
    const [good, bad] = conv(convId).messages.slice(-2)
    expect([good!.status, good!.content, bad!.status, bad!.error?.message]).toEqual(['done', 'first says hi', 'error', 'no such model'])
  })

  it('one Stop stops both columns', async () => {
    const convId = chatStore.getState().create({ params: DEFAULT_PARAMS, model: 'slow' })
    await sendCompared(convId, 'Go on and on.', [], { model: 'slow', temperature: 1 })
    await until(() => open === 2)
    stop(convId)
    await until(() => !streaming(convId))
    // Both requests were cut off long before their 2 s.
    await until(() => cutShort === 2)
    expect(conv(convId).messages.every((m) => m.content.length < 200)).toBe(true)
  })

  it('offers another model for the second column, else the same one warmer; labels say what each asked', () => {
    const own = { params: { ...DEFAULT_PARAMS, temperature: 0.7 }, systemPrompt: '' }
    expect(defaultSecond(own, 'a', [{ id: 'a' }, { id: 'b' }])).toMatchObject({ model: 'b', temperature: 0.7 })
    expect(defaultSecond(own, 'a', [{ id: 'a' }])).toMatchObject({ model: 'a', temperature: 1.2 })
    const t = translator('en')
    const message = { id: 'x', role: 'assistant' as const, content: '', createdAt: 0 }
    expect(variantLabel({ ...message, variant: { model: 'b', temperature: 1, seed: 3, systemPrompt: 'Be brief.' } }, 'a', t)).toBe(
      'b · temperature 1 · seed 3 · system prompt “Be brief.”',
    )
    expect(variantLabel({ ...message, variant: { temperature: 0.7, seed: null, systemPrompt: '' } }, 'a', t)).toBe('a · temperature 0.7')
  })
})
