import { describe, expect, it } from 'vitest'
import { deletePrompt, savePrompt, settingsStore } from '../store/settings'
import { matchPrompts, slashQuery } from './slash'

describe('the prompt library under /', () => {
  it('opens on a slash at the start of a one-line message only', () => {
    expect(slashQuery('/')).toBe('')
    expect(slashQuery('/sum')).toBe('sum')
    expect(slashQuery('/code review')).toBe('code review')
    expect(slashQuery('see /etc')).toBeNull()
    expect(slashQuery('/etc/hosts\nwhat is this?')).toBeNull()
    expect(slashQuery('')).toBeNull()
  })

  it('filters by name, any case, names starting with the query first', () => {
    const prompts = [
      { name: 'Explain code', text: 'e' },
      { name: 'Code review', text: 'r' },
      { name: 'Translate', text: 't' },
    ]
    expect(matchPrompts(prompts, '').map((p) => p.name)).toEqual(['Code review', 'Explain code', 'Translate'])
    expect(matchPrompts(prompts, 'CODE').map((p) => p.name)).toEqual(['Code review', 'Explain code'])
    expect(matchPrompts(prompts, 'xyz')).toEqual([])
  })

  it('saves, renames and deletes prompts in the settings, sorted by name', () => {
    savePrompt('b', 'second')
    savePrompt('a', 'first')
    savePrompt('b', 'second, edited')
    expect(settingsStore.getState().prompts).toEqual([
      { name: 'a', text: 'first' },
      { name: 'b', text: 'second, edited' },
    ])
    savePrompt('c', 'third', 'b') // b renamed
    deletePrompt('a')
    expect(settingsStore.getState().prompts).toEqual([{ name: 'c', text: 'third' }])
  })
})
