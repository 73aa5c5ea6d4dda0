import { createStore } from 'zustand/vanilla'
import type { Conversation } from '../types'
import { chatStore } from './conversations'

/** Settings chosen on the welcome screen, before the conversation they are for exists. */
export type ChatDraft = Pick<Conversation, 'systemPrompt' | 'params' | 'tools' | 'toolChoice'>

interface UiState {
  settingsOpen: boolean
  chatSettingsOpen: boolean
  shortcutsOpen: boolean
  /** The drawer on phones; a collapsed column on wide screens. */
  sidebarOpen: boolean
  draft: ChatDraft | null
}

const wide = window.matchMedia('(min-width: 800px)')

export const uiStore = createStore<UiState>()(() => ({
  settingsOpen: false,
  chatSettingsOpen: false,
  shortcutsOpen: false,
  sidebarOpen: wide.matches,
  draft: null,
}))

// Crossing the breakpoint (rotating a tablet, resizing) shows the column or hides the drawer.
wide.addEventListener('change', (e) => uiStore.setState({ sidebarOpen: e.matches }))

/** A passing notice with an Undo (a deletion, an archiving): one at a time, the newest wins. */
export interface UndoNotice {
  id: number
  text: string
  undo: () => void
}
export const undoStore = createStore<{ notice: UndoNotice | null }>()(() => ({ notice: null }))
let noticeCount = 0
export function offerUndo(text: string, undo: () => void): void {
  undoStore.setState({ notice: { id: ++noticeCount, text, undo } })
}

export const isPhoneWidth = () => !wide.matches

export function closeOnPhone() {
  if (isPhoneWidth()) uiStore.setState({ sidebarOpen: false })
}

export function startNewChat() {
  const { activeId, conversations } = chatStore.getState()
  // An untouched conversation is reused rather than piling up empty ones.
  if (!activeId || conversations[activeId]?.messages.length) chatStore.getState().select(null)
  closeOnPhone()
}
