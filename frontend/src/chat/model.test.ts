import { describe, expect, it } from 'vitest'
import { acceptsImages, resolveEmbeddingModel, resolveModel } from './model'

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

describe('resolveEmbeddingModel', () => {
  const listed = [{ id: 'minilm' }, { id: 'bge' }]
  it("takes the model chosen in Settings while the server lists it, else the server's first", () => {
    expect(resolveEmbeddingModel('bge', listed)).toEqual({ model: { id: 'bge' }, gone: null })
    expect(resolveEmbeddingModel('', listed)).toEqual({ model: { id: 'minilm' }, gone: null })
  })
  it('names a chosen model the server no longer lists, for the notice', () => {
    expect(resolveEmbeddingModel('e5', listed)).toEqual({ model: { id: 'minilm' }, gone: 'e5' })
    expect(resolveEmbeddingModel('e5', [])).toEqual({ model: undefined, gone: 'e5' })
  })
})

describe('acceptsImages', () => {
  it('only when the server lists vision among the capabilities (nothing listed: text only)', () => {
    expect(acceptsImages({ id: 'llava', capabilities: ['chat', 'vision'] })).toBe(true)
    expect(acceptsImages({ id: 'SmolLM2-135M-Instruct', capabilities: ['chat', 'completions'] })).toBe(false)
    expect(acceptsImages({ id: 'gpt-4o' })).toBe(false)
    expect(acceptsImages(undefined)).toBe(false)
  })
})
