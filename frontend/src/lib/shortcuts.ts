/** What the page's keyboard shortcuts do (Esc, stopping an answer, is handled where it was). */
export type Shortcut = 'newChat' | 'search' | 'focusInput' | 'copyLast' | 'help'

export interface ShortcutKey {
  key: string
  ctrlKey: boolean
  metaKey: boolean
  shiftKey: boolean
  altKey: boolean
  /** Typing in a field: a plain `?` is then a question mark, not the shortcut sheet. */
  inField: boolean
}

/**
 * The shortcuts, as ChatGPT has them: Ctrl/⌘+Shift+O a new chat, Ctrl/⌘+K search, Shift+Esc the
 * message box, Ctrl/⌘+Shift+C copy the last answer, Ctrl/⌘+/ (or `?` outside a field) this list.
 */
export function shortcutFor(e: ShortcutKey): Shortcut | null {
  const mod = e.ctrlKey || e.metaKey
  const key = e.key.toLowerCase()
  if (e.altKey) return null
  if (mod && e.shiftKey && key === 'o') return 'newChat'
  if (mod && !e.shiftKey && key === 'k') return 'search'
  if (!mod && e.shiftKey && key === 'escape') return 'focusInput'
  if (mod && e.shiftKey && key === 'c') return 'copyLast'
  if ((mod && key === '/') || (!mod && !e.inField && key === '?')) return 'help'
  return null
}

/** The list the `?` sheet shows: the keys (for this platform) and what they do. */
export function shortcutList(mac: boolean): { keys: string[]; action: Shortcut | 'stop' }[] {
  const mod = mac ? '⌘' : 'Ctrl'
  return [
    { keys: [mod, 'Shift', 'O'], action: 'newChat' },
    { keys: [mod, 'K'], action: 'search' },
    { keys: ['Shift', 'Esc'], action: 'focusInput' },
    { keys: [mod, 'Shift', 'C'], action: 'copyLast' },
    { keys: ['Esc'], action: 'stop' },
    { keys: [mod, '/'], action: 'help' },
  ]
}
