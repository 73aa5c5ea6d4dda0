import type { Conversation, Message } from '../types'
import { withParents } from './branches'

export type Field = Exclude<keyof Conversation, 'id' | 'messages'>
export const FIELDS: Field[] = [
  'title',
  'createdAt',
  'updatedAt',
  'systemPrompt',
  'params',
  'model',
  'current',
  'tools',
  'toolChoice',
  'pinned',
  'archived',
  'folder',
]

/** What this tab changed in one conversation since it last wrote it. */
export interface Change {
  fields: Set<Field>
  /** Messages added or updated. */
  messages: Set<string>
  removed: Set<string>
}

export const newChange = (): Change => ({ fields: new Set(), messages: new Set(), removed: new Set() })

/** Adds what changed from `before` (undefined: a new conversation) to `after` into `change`. */
export function recordChange(change: Change, before: Conversation | undefined, after: Conversation): void {
  for (const field of FIELDS) if (before?.[field] !== after[field]) change.fields.add(field)
  if (before?.messages === after.messages) return
  const old = new Map(before?.messages.map((m) => [m.id, m]))
  for (const m of after.messages) {
    if (old.get(m.id) === m) continue
    change.messages.add(m.id)
    change.removed.delete(m.id)
  }
  const kept = new Set(after.messages.map((m) => m.id))
  for (const id of old.keys()) {
    if (kept.has(id)) continue
    change.removed.add(id)
    change.messages.delete(id)
  }
}

/**
 * The messages this tab removed that another tab's messages follow from (it answered in a
 * version this tab deleted): they stay, so no tab's branch is ever cut loose or lost.
 */
function stillNeeded(stored: Message[], removed: Set<string>): Set<string> {
  const byId = new Map(stored.map((m) => [m.id, m]))
  const needed = new Set<string>()
  for (const m of stored) {
    if (removed.has(m.id)) continue
    for (let p = m.parentId; p && removed.has(p) && !needed.has(p); p = byId.get(p)?.parentId) needed.add(p)
  }
  return needed
}

/**
 * This tab's change applied to the stored conversation, which may hold what another tab wrote
 * since this one read it: only the fields and messages this tab changed are taken from it.
 * Messages are records of a tree (store/branches.ts), so both tabs' branches are kept.
 */
export function merge(stored: Conversation, local: Conversation, change: Change): Conversation {
  const merged: Conversation = { ...stored }
  for (const field of change.fields) Object.assign(merged, { [field]: local[field] })
  const mine = new Map(local.messages.map((m) => [m.id, m]))
  // Stored by a version of the page before branches: a flat list.
  const storedMessages = withParents(stored.messages)
  const needed = stillNeeded(storedMessages, change.removed)
  const messages = storedMessages
    .filter((m) => !change.removed.has(m.id) || needed.has(m.id))
    .map((m) => (change.messages.has(m.id) ? (mine.get(m.id) ?? m) : m))
  const present = new Set(messages.map((m) => m.id))
  for (const m of local.messages) if (change.messages.has(m.id) && !present.has(m.id)) messages.push(m)
  merged.messages = messages
  return merged
}

/** What of a message another tab may change: its text and how it ended (an answer it streamed). */
const sameMessage = (a: Message, b: Message | undefined) =>
  !!b &&
  a.id === b.id &&
  a.status === b.status &&
  a.content === b.content &&
  a.reasoning === b.reasoning &&
  a.toolCalls?.length === b.toolCalls?.length

/**
 * Whether a merged conversation holds anything this tab's copy lacks: other tabs' messages or
 * fields, or an answer another tab went on streaming or finished (else this tab would keep
 * showing it half-written, with a Stop button, until a reload).
 */
export function differs(a: Conversation, b: Conversation): boolean {
  return (
    FIELDS.some((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f])) ||
    a.messages.length !== b.messages.length ||
    a.messages.some((m, i) => !sameMessage(m, b.messages[i]))
  )
}
