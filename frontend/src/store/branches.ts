import type { Conversation, Message } from '../types'

/**
 * A conversation is a tree: each message names its parent (`parentId`), and an edited question
 * or a regenerated answer is a sibling of the one it replaces, so nothing is lost. `messages`
 * holds every branch in the order the messages were made (a parent always before its children);
 * `current` names the message the reader chose last, and the branch shown runs from the root
 * through it, then on through the newest child at each step.
 */

/**
 * Gives every message an explicit parent. Conversations saved before branches (and old export
 * files) are flat lists: a message without a usable parent follows the one before it. A parent
 * must come earlier in the list, which also rules out cycles in an imported file.
 */
export function withParents(messages: Message[]): Message[] {
  const seen = new Set<string>()
  let changed = false
  const out = messages.map((m, i) => {
    const ok = m.parentId === null || (m.parentId !== undefined && seen.has(m.parentId))
    seen.add(m.id)
    if (ok) return m
    changed = true
    return { ...m, parentId: messages[i - 1]?.id ?? null }
  })
  return changed ? out : messages
}

const parentOf = (m: Message) => m.parentId ?? null

function childrenByParent(messages: Message[]): Map<string | null, Message[]> {
  const children = new Map<string | null, Message[]>()
  for (const m of messages) {
    const list = children.get(parentOf(m))
    if (list) list.push(m)
    else children.set(parentOf(m), [m])
  }
  return children
}

/** The messages from the root down to `id` (inclusive): what a request at that point sends. */
export function pathTo(messages: Message[], id: string | null): Message[] {
  const byId = new Map(messages.map((m) => [m.id, m]))
  const path: Message[] = []
  // Bounded: a parent always comes first, but a damaged store must not hang the page.
  for (let m = id === null ? undefined : byId.get(id); m && path.length <= messages.length; ) {
    path.push(m)
    const parent = parentOf(m)
    m = parent === null ? undefined : byId.get(parent)
  }
  return path.reverse()
}

/** The branch shown: root to `current` (else the newest message), then the newest child onwards. */
export function activePath(conv: Conversation): Message[] {
  const { messages } = conv
  const start = conv.current && messages.some((m) => m.id === conv.current) ? conv.current : messages.at(-1)?.id
  if (start === undefined) return []
  const path = pathTo(messages, start)
  const children = childrenByParent(messages)
  for (let tip = path.at(-1); tip && path.length <= messages.length; ) {
    tip = children.get(tip.id)?.at(-1)
    if (tip) path.push(tip)
  }
  return path
}

/** The other versions of a message (itself included), oldest first: edits and regenerations. */
export function siblings(messages: Message[], id: string): Message[] {
  const message = messages.find((m) => m.id === id)
  return message ? messages.filter((m) => parentOf(m) === parentOf(message)) : []
}

/** For each message of the shown branch: which of its versions it is (1-based) and how many there are. */
export function versionsOnPath(conv: Conversation, path: Message[]): Map<string, { version: number; versions: number }> {
  const children = childrenByParent(conv.messages)
  return new Map(
    path.map((m) => {
      const list = children.get(parentOf(m)) ?? [m]
      return [m.id, { version: list.indexOf(m) + 1, versions: list.length }]
    }),
  )
}

/** The sibling `step` places from `id` (-1: the previous version), or null past either end. */
export function neighbourVersion(messages: Message[], id: string, step: number): string | null {
  const list = siblings(messages, id)
  return list[list.findIndex((m) => m.id === id) + step]?.id ?? null
}

/** `id` and everything that follows from it. */
export function subtree(messages: Message[], id: string): Set<string> {
  const gone = new Set([id])
  // Children come after their parents, so one pass finds every descendant.
  for (const m of messages) if (m.parentId && gone.has(m.parentId)) gone.add(m.id)
  return gone
}

/**
 * Removes one version and what follows it. When the reader was on it, they land on the version
 * before it (else the one after, else its parent).
 */
export function withoutVersion(conv: Conversation, id: string): Conversation {
  const gone = subtree(conv.messages, id)
  const messages = conv.messages.filter((m) => !gone.has(m.id))
  if (messages.length === conv.messages.length) return conv
  const onPath = activePath(conv).some((m) => m.id === id)
  let current = conv.current
  if (onPath) {
    const next = neighbourVersion(conv.messages, id, -1) ?? neighbourVersion(conv.messages, id, 1)
    current = next ?? conv.messages.find((m) => m.id === id)?.parentId ?? undefined
  }
  const { current: _old, ...rest } = conv
  return { ...rest, messages, ...(current !== undefined ? { current } : {}) }
}
