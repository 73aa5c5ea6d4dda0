import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ModelInfo } from '../api/client'
import { modelLabel, modelSize } from '../chat/model'
import { translator } from '../i18n'
import { followLoad, loadEmbeddingModel, modelsStore, refreshModels, waitsForLoad } from './models'
import { settingsStore } from './settings'

describe('the model picker', () => {
  const t = translator('en')
  it("shows a model's size and, unless it is loaded, its state", () => {
    const qwen: ModelInfo = { id: 'qwen', size_bytes: 1.5 * 1024 ** 3, state: 'unloaded' }
    expect(modelLabel(qwen, t)).toBe('qwen · 1.5 GB · not loaded')
    expect(modelLabel({ ...qwen, state: 'loading', progress: 0.416 }, t)).toBe('qwen · 1.5 GB · loading 41 %')
    expect(modelLabel({ ...qwen, state: 'failed' }, t)).toBe('qwen · 1.5 GB · failed to load')
    expect(modelLabel({ ...qwen, state: 'loaded' }, t)).toBe('qwen · 1.5 GB')
    // Another OpenAI-compatible server says nothing of either.
    expect(modelLabel({ id: 'gpt-x' }, t)).toBe('gpt-x')
    expect(modelSize(270 * 1024 * 1024)).toBe('270.0 MB')
    expect(translator('zh')('modelLoading', { pct: 41 })).toBe('加载中 41 %')
  })

  it('waits for a load only where the server says the model is not in memory', () => {
    expect(waitsForLoad({ id: 'a', state: 'unloaded' })).toBe(true)
    expect(waitsForLoad({ id: 'a', state: 'loading' })).toBe(true)
    expect(waitsForLoad({ id: 'a', state: 'loaded' })).toBe(false)
    expect(waitsForLoad({ id: 'a' })).toBe(false)
  })
})

describe('followLoad', () => {
  let server: Server
  const cards: Partial<ModelInfo>[] = []
  const asked: string[] = []

  beforeAll(async () => {
    server = createServer((req, res) => {
      asked.push(`${req.method} ${req.url ?? ''}`)
      const json = (body: unknown) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
      if (req.url === '/v1/models') {
        json({ data: [{ id: 'qwen', capabilities: ['chat'] }, { id: 'minilm', capabilities: ['embeddings'], state: 'unloaded' }] })
      } else if (req.url === '/v1/embeddings') {
        // Answers once the load it started is over, as the server does.
        setTimeout(() => json({ data: [{ index: 0, embedding: [1, 0] }] }), 40)
      } else {
        const card = cards.length > 1 ? cards.shift() : cards[0]
        json({ id: req.url?.split('/').pop(), ...card })
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    settingsStore.getState().update({ apiBaseUrl: `http://127.0.0.1:${port}/v1`, apiKey: '' })
  })
  afterAll(() => server.close())

  it("follows the server's progress into the model list until the model is loaded", async () => {
    modelsStore.setState({ models: [{ id: 'other' }, { id: 'qwen', state: 'unloaded' }] })
    cards.push(
      { state: 'loading', progress: 0.2 },
      { state: 'loading', progress: 0.7 },
      // Only the load's fields are taken: the list's other fields stay as the list was read.
      { state: 'loaded', progress: 1, error: null, capabilities: ['chat'] },
    )
    const seen: (number | null | undefined)[] = []
    const unsubscribe = modelsStore.subscribe((s) => seen.push(s.models[1]?.progress))
    await followLoad('qwen', new AbortController().signal, 1)
    unsubscribe()
    expect(seen).toEqual([0.2, 0.7, 1])
    expect(modelsStore.getState().models).toEqual([
      { id: 'other' },
      { id: 'qwen', state: 'loaded', progress: 1, error: null },
    ])
    expect(asked.every((url) => url === 'GET /v1/models/qwen')).toBe(true)
  })

  it('stops when the answer is stopped', async () => {
    cards.splice(0, cards.length, { state: 'loading', progress: 0.1 })
    const stop = new AbortController()
    const following = followLoad('qwen', stop.signal, 5)
    setTimeout(() => stop.abort(), 30)
    await following
    expect(modelsStore.getState().models[1]).toMatchObject({ state: 'loading' })
  })

  it('loads a chosen embeddings model with a request naming it, following its progress', async () => {
    asked.length = 0
    await refreshModels()
    expect(modelsStore.getState().models.map((m) => m.id)).toEqual(['qwen'])
    expect(modelsStore.getState().embeddingModels).toEqual([{ id: 'minilm', capabilities: ['embeddings'], state: 'unloaded' }])
    cards.splice(0, cards.length, { state: 'loading', progress: 0.5 }, { state: 'loaded', progress: null, max_model_len: 256, capabilities: [] })
    await loadEmbeddingModel('minilm')
    // What loading learnt comes with the state; the capabilities stay the list's.
    expect(modelsStore.getState().embeddingModels[0]).toEqual({ id: 'minilm', capabilities: ['embeddings'], state: 'loaded', progress: null, max_model_len: 256 })
    expect(asked).toContain('POST /v1/embeddings')
    expect(asked).toContain('GET /v1/models/minilm')
    // Loaded already: nothing is asked.
    asked.length = 0
    await loadEmbeddingModel('minilm')
    expect(asked).toEqual([])
  })
})
