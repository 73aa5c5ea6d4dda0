import { useEffect } from 'react'
import { stop } from '../chat/generate'
import { splitThinking } from '../chat/thinking'
import { copyText } from '../lib/clipboard'
import { shortcutFor, type Shortcut } from '../lib/shortcuts'
import { activePath } from '../store/branches'
import { chatStore } from '../store/conversations'
import { startNewChat, uiStore } from '../store/ui'

const focusComposer = () => document.getElementById('composer-input')?.focus()

function run(action: Shortcut): void {
  switch (action) {
    case 'newChat':
      startNewChat()
      requestAnimationFrame(focusComposer)
      return
    case 'search':
      // On a phone the list is a drawer: open it first.
      uiStore.setState({ sidebarOpen: true })
      requestAnimationFrame(() => document.querySelector<HTMLInputElement>('.search input')?.focus())
      return
    case 'focusInput':
      focusComposer()
      return
    case 'copyLast': {
      const { activeId, conversations } = chatStore.getState()
      const conv = activeId ? conversations[activeId] : undefined
      const last = conv && activePath(conv).findLast((m) => m.role === 'assistant' && m.content)
      if (last) void copyText(splitThinking(last).answer)
      return
    }
    case 'help':
      uiStore.setState({ shortcutsOpen: true })
  }
}

/**
 * The page's keyboard shortcuts (lib/shortcuts.ts), and Esc to stop the answer from anywhere; an
 * open dialog keeps its keys to itself.
 */
export function useShortcuts(): void {
  useEffect(() => {
    const onKeyDown = (e: KeyboardEvent) => {
      if (e.defaultPrevented || document.querySelector('dialog[open]')) return
      const target = e.target instanceof HTMLElement ? e.target : null
      const inField = !!target?.closest('input, textarea, select, [contenteditable="true"]')
      // A DOM event's fields are getters on its prototype: a spread would copy none of them.
      const { key, ctrlKey, metaKey, shiftKey, altKey } = e
      const action = shortcutFor({ key, ctrlKey, metaKey, shiftKey, altKey, inField })
      if (action) {
        e.preventDefault()
        run(action)
        return
      }
      if (e.key !== 'Escape') return
      const { activeId } = chatStore.getState()
      if (activeId) stop(activeId)
    }
    window.addEventListener('keydown', onKeyDown)
    return () => window.removeEventListener('keydown', onKeyDown)
  }, [])
}
