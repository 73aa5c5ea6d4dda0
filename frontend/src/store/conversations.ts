import { createStore } from 'zustand/vanilla'
import { newId } from '../lib/id'
import { sameContent } from '../lib/transfer'
import type { MessageKey } from '../i18n'
import type { Conversation, GenParams, Message } from '../types'
import { activePath, withoutVersion, withParents } from './branches'

export interface ChatState {
  conversations: Record<string, Conversation>
  activeId: string | null
  /** False until the saved conversations have been read from IndexedDB. */
  loaded: boolean
}

export interface ChatActions {
  load: (saved: Conversation[], activeId: string | null) => void
  create: (init: { params: GenParams; model: string }) => string
  select: (id: string | null) => void
  rename: (id: string, title: string) => void
  remove: (id: string) => void
  patch: (
    id: string,
    patch: Partial<
      Pick<Conversation, 'systemPrompt' | 'params' | 'model' | 'tools' | 'toolChoice' | 'pinned' | 'archived' | 'folder'>
    >,
  ) => void
  /** Puts back a conversation deleted a moment ago (Undo); an answer it was writing stays stopped. */
  restore: (conv: Conversation) => void
  /**
   * Adds a message after `message.parentId` (when absent: after the end of the branch shown)
   * and shows it.
   */
  addMessage: (id: string, message: Message) => void
  updateMessage: (id: string, messageId: string, patch: Partial<Message>) => void
  /** Shows the branch through `messageId` (one of the versions of a message). */
  showVersion: (id: string, messageId: string) => void
  /** Drops one version of a message and everything that follows from it. */
  removeVersion: (id: string, messageId: string) => void
  /** Adds the conversations not already here; returns how many it added. */
  importMany: (list: Conversation[]) => number
}

export type ChatStore = ChatState & ChatActions

const TITLE_LENGTH = 60

export function titleFrom(text: string): string {
  const line = text.trim().replace(/\s+/g, ' ')
  return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line
}

/**
 * A page closed mid-answer leaves a `streaming` message behind: interrupted, until the server
 * gives it back (an answer with a stream id is resumed: chat/generate.ts), else retried.
 * Conversations saved before branches get their messages' parents.
 */
function settle(conv: Conversation): Conversation {
  const messages = withParents(conv.messages)
  if (messages === conv.messages && !messages.some((m) => m.status === 'streaming')) return conv
  return {
    ...conv,
    messages: messages.map((m) => (m.status === 'streaming' ? { ...m, status: 'interrupted' } : m)),
  }
}

export function createChatStore() {
  return createStore<ChatStore>()((set, get) => {
    const edit = (id: string, fn: (c: Conversation) => Conversation) =>
      set((s) => {
        const conv = s.conversations[id]
        return conv ? { conversations: { ...s.conversations, [id]: fn(conv) } } : s
      })

    return {
      conversations: {},
      activeId: null,
      loaded: false,

      load: (saved, activeId) => {
        const conversations = Object.fromEntries(saved.map((c) => [c.id, settle(c)]))
        set({ conversations, activeId: activeId && conversations[activeId] ? activeId : null, loaded: true })
      },

      create: ({ params, model }) => {
        const now = Date.now()
        const conv: Conversation = {
          id: newId(),
          title: '',
          createdAt: now,
          updatedAt: now,
          systemPrompt: '',
          params,
          model,
          messages: [],
        }
        set((s) => ({ conversations: { ...s.conversations, [conv.id]: conv }, activeId: conv.id }))
        return conv.id
      },

      select: (id) => set({ activeId: id }),

      rename: (id, title) => edit(id, (c) => ({ ...c, title: title.trim() || c.title })),

      remove: (id) =>
        set((s) => {
          const { [id]: _removed, ...conversations } = s.conversations
          return { conversations, activeId: s.activeId === id ? null : s.activeId }
        }),

      patch: (id, patch) => edit(id, (c) => ({ ...c, ...patch })),

      restore: (conv) =>
        set((s) => ({ conversations: { ...s.conversations, [conv.id]: settle(conv) }, activeId: s.activeId ?? conv.id })),

      addMessage: (id, message) =>
        edit(id, (c) => ({
          ...c,
          title: c.title || (message.role === 'user' ? titleFrom(message.content) : c.title),
          updatedAt: Date.now(),
          messages: [
            ...c.messages,
            { ...message, parentId: message.parentId !== undefined ? message.parentId : (activePath(c).at(-1)?.id ?? null) },
          ],
          current: message.id,
        })),

      // Streaming calls this every frame, so it leaves updatedAt (the sidebar order) alone.
      updateMessage: (id, messageId, patch) =>
        edit(id, (c) => ({
          ...c,
          messages: c.messages.map((m) => (m.id === messageId ? { ...m, ...patch } : m)),
        })),

      showVersion: (id, messageId) =>
        edit(id, (c) => (c.messages.some((m) => m.id === messageId) ? { ...c, current: messageId } : c)),

      removeVersion: (id, messageId) =>
        edit(id, (c) => {
          const next = withoutVersion(c, messageId)
          return next === c ? c : { ...next, updatedAt: Date.now() }
        }),

      importMany: (list) => {
        const existing = get().conversations
        const before = Object.values(existing)
        const added: Record<string, Conversation> = {}
        for (const conv of list) {
          // Already here (the same file imported again): nothing to add.
          if (before.some((c) => sameContent(c, conv))) continue
          // Importing the same file twice gives copies rather than silently overwriting edits.
          const id = existing[conv.id] || added[conv.id] ? newId() : conv.id
          added[id] = settle({ ...conv, id })
        }
        set((s) => ({ conversations: { ...s.conversations, ...added } }))
        return Object.keys(added).length
      },
    }
  })
}

export const chatStore = createChatStore()

export type SidebarGroup = { key: string; heading: { label: MessageKey } | { folder: string }; list: Conversation[] }

/** How old a conversation is, as the sidebar groups them ("today" as of `now`). */
function ageGroup(updatedAt: number, now: Date): MessageKey {
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime()
  if (updatedAt >= startOfToday) return 'today'
  if (updatedAt >= startOfToday - 7 * DAY) return 'previous7'
  return 'older'
}
const DAY = 24 * 60 * 60 * 1000

/**
 * The sidebar's sections, newest first in each: pinned, then each folder (by name), then the
 * rest by age; archived ones only when `showArchived` (or a search: what it finds is shown).
 */
export function sidebarGroups(
  conversations: Record<string, Conversation>,
  query: string,
  now: Date,
  showArchived: boolean,
): SidebarGroup[] {
  const groups = new Map<string, SidebarGroup>()
  const put = (key: string, heading: SidebarGroup['heading'], conv: Conversation) => {
    const group = groups.get(key) ?? { key, heading, list: [] }
    group.list.push(conv)
    groups.set(key, group)
  }
  const folders: string[] = []
  for (const conv of sortedConversations(conversations)) {
    if (!matchesQuery(conv, query)) continue
    if (conv.archived) {
      if (showArchived || query.trim()) put('archived', { label: 'archived' }, conv)
    } else if (conv.pinned) put('pinned', { label: 'pinned' }, conv)
    else if (conv.folder) {
      if (!groups.has(`folder:${conv.folder}`)) folders.push(conv.folder)
      put(`folder:${conv.folder}`, { folder: conv.folder }, conv)
    } else {
      const age = ageGroup(conv.updatedAt, now)
      put(age, { label: age }, conv)
    }
  }
  const order = ['pinned', ...folders.sort((a, b) => a.localeCompare(b)).map((f) => `folder:${f}`), 'today', 'previous7', 'older', 'archived']
  return order.flatMap((key) => groups.get(key) ?? [])
}

/** The folder names in use, for the "Move to folder" suggestions. */
export function folderNames(conversations: Record<string, Conversation>): string[] {
  return [...new Set(Object.values(conversations).flatMap((c) => (c.folder ? [c.folder] : [])))].sort((a, b) => a.localeCompare(b))
}

export function sortedConversations(conversations: Record<string, Conversation>): Conversation[] {
  return Object.values(conversations).sort((a, b) => b.updatedAt - a.updatedAt)
}

export function matchesQuery(conv: Conversation, query: string): boolean {
  const q = query.trim().toLowerCase()
  if (!q) return true
  return (
    conv.title.toLowerCase().includes(q) || conv.messages.some((m) => m.content.toLowerCase().includes(q))
  )
}
