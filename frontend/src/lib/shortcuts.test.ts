import { describe, expect, it } from 'vitest'
import { shortcutFor, type ShortcutKey } from './shortcuts'

const key = (over: Partial<ShortcutKey>): ShortcutKey => ({
  key: 'a',
  ctrlKey: false,
  metaKey: false,
  shiftKey: false,
  altKey: false,
  inField: false,
  ...over,
})

describe('shortcutFor', () => {
  it('knows each shortcut with Ctrl or ⌘, and nothing else', () => {
    expect(shortcutFor(key({ key: 'O', ctrlKey: true, shiftKey: true }))).toBe('newChat')
    expect(shortcutFor(key({ key: 'o', metaKey: true, shiftKey: true }))).toBe('newChat')
    expect(shortcutFor(key({ key: 'k', ctrlKey: true, inField: true }))).toBe('search')
    expect(shortcutFor(key({ key: 'Escape', shiftKey: true, inField: true }))).toBe('focusInput')
    expect(shortcutFor(key({ key: 'C', ctrlKey: true, shiftKey: true }))).toBe('copyLast')
    expect(shortcutFor(key({ key: '/', ctrlKey: true }))).toBe('help')
    // Plain copy, plain letters and Alt combinations are the browser's and the user's.
    expect(shortcutFor(key({ key: 'c', ctrlKey: true }))).toBeNull()
    expect(shortcutFor(key({ key: 'k' }))).toBeNull()
    expect(shortcutFor(key({ key: 'k', ctrlKey: true, altKey: true }))).toBeNull()
  })

  it('a ? opens the list outside a text field, and is a question mark inside one', () => {
    expect(shortcutFor(key({ key: '?', shiftKey: true }))).toBe('help')
    expect(shortcutFor(key({ key: '?', shiftKey: true, inField: true }))).toBeNull()
  })
})
