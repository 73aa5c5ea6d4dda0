import { describe, expect, it } from 'vitest'
import { resolveModel } from './model'

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
