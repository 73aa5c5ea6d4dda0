import { describe, expect, it } from 'vitest'
import { splitThinking } from './thinking'

describe('splitThinking', () => {
  it('takes reasoning the server streamed apart', () => {
    expect(splitThinking({ content: 'Paris.', reasoning: 'The capital of France…' })).toEqual({
      reasoning: 'The capital of France…',
      answer: 'Paris.',
    })
  })

  it('takes a leading <think> block, open to the end while it streams', () => {
    expect(splitThinking({ content: '<think>\nHmm, France.\n</think>\n\nParis.' })).toEqual({
      reasoning: 'Hmm, France.',
      answer: 'Paris.',
    })
    expect(splitThinking({ content: ' <think>Hmm, Fra' })).toEqual({ reasoning: 'Hmm, Fra', answer: '' })
    expect(splitThinking({ content: '<think>' })).toEqual({ reasoning: '', answer: '' })
    // The template opened the tag in the prompt: only the closing one arrives.
    expect(splitThinking({ content: 'Hmm.</think>Paris.' })).toEqual({ reasoning: 'Hmm.', answer: 'Paris.' })
  })

  it('leaves an answer without reasoning, or one that only mentions the tag later, alone', () => {
    expect(splitThinking({ content: 'Paris.' })).toEqual({ reasoning: null, answer: 'Paris.' })
    const text = 'Use a <think> tag like this.'
    expect(splitThinking({ content: text })).toEqual({ reasoning: null, answer: text })
  })
})
