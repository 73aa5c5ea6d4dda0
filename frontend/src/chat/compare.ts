import { createStore } from 'zustand/vanilla'
import type { ModelInfo } from '../api/client'
import type { Translate } from '../i18n'
import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import type { Attachment, Conversation, Message, Variant } from '../types'
import { newConversation } from './actions'
import { generateSiblings } from './generate'

/**
 * Side by side: one question, two answers streaming at once in columns, then the reader keeps
 * one. Both answers are versions of the question's answer (store/branches.ts), so the one not
 * kept stays a ‹ 1/2 › away, as after Regenerate: nothing the reader paid for in waiting is
 * thrown away unasked, and the version's trash button removes it for good.
 */

/** The comparison open in each conversation (this tab, until one answer is kept). */
export const compareStore = createStore<Record<string, { questionId: string; ids: string[] }>>()(() => ({}))

/** The first column: the conversation's own settings, written out so its heading can show them. */
export function ownVariant(conv: Pick<Conversation, 'params' | 'systemPrompt'>): Variant {
  return { temperature: conv.params.temperature, seed: conv.params.seed, systemPrompt: conv.systemPrompt }
}

/**
 * What the second column offers first: another model the server lists, with the same settings;
 * with only one model, the same one at a higher temperature, so the two answers differ.
 */
export function defaultSecond(conv: Pick<Conversation, 'params' | 'systemPrompt'>, model: string, listed: ModelInfo[]): Variant {
  const other = listed.find((m) => m.id !== model)?.id
  const own = ownVariant(conv)
  return other ? { ...own, model: other } : { ...own, model, temperature: Math.min(2, (own.temperature ?? 0.7) + 0.5) }
}

/**
 * Sends `text` and streams two answers to it side by side: the conversation's settings, and
 * `second`. False (nothing sent) while another tab is answering there.
 */
export function sendCompared(convId: string | null, text: string, attachments: Attachment[], second: Variant): Promise<boolean> {
  const id = convId ?? newConversation(settingsStore.getState().lastModel)
  const questionId = newId()
  const conv = chatStore.getState().conversations[id]
  if (!conv) return Promise.resolve(false)
  const columns = [ownVariant(conv), second].map((variant) => ({ id: newId(), variant }))
  compareStore.setState({ [id]: { questionId, ids: columns.map((c) => c.id) } })
  return generateSiblings(id, questionId, columns, () =>
    chatStore.getState().addMessage(id, {
      id: questionId,
      role: 'user',
      content: text,
      createdAt: Date.now(),
      ...(attachments.length ? { attachments } : {}),
    }),
  ).then((started) => {
    if (!started) close(id)
    return started
  })
}

function close(convId: string): void {
  compareStore.setState((s) => {
    const { [convId]: _closed, ...rest } = s
    return rest
  }, true)
}

/**
 * The columns to show at the end of the branch `path`: the compared answers still there (Stop
 * before the first token removes one), while the branch ends at one of them (nothing has
 * followed) and at least two remain; else none.
 */
export function comparedColumns(conv: Conversation, path: Message[], open: { questionId: string; ids: string[] } | undefined): Message[] {
  if (!open || !open.ids.includes(path.at(-1)?.id ?? '')) return []
  const columns = open.ids.flatMap((id) => conv.messages.find((m) => m.id === id) ?? [])
  return columns.length >= 2 ? columns : []
}

/** Keeps one answer of the comparison: it becomes the version shown; the columns close. */
export function keepAnswer(convId: string, messageId: string): void {
  chatStore.getState().showVersion(convId, messageId)
  close(convId)
}

/** A column's heading: its model, then the settings it was asked with. */
export function variantLabel(message: Message, fallbackModel: string, t: Translate): string {
  const v = message.variant ?? {}
  const parts = [message.model ?? v.model ?? fallbackModel]
  if (v.temperature !== undefined) parts.push(t('compareTemperature', { n: v.temperature }))
  if (v.seed !== undefined && v.seed !== null) parts.push(t('compareSeed', { n: v.seed }))
  if (v.systemPrompt?.trim()) parts.push(t('compareSystem', { text: v.systemPrompt.trim().slice(0, 40) }))
  return parts.join(' · ')
}
