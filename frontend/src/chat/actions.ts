import { newId } from '../lib/id'
import { neighbourVersion } from '../store/branches'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import type { Conversation } from '../types'
import { continueInPlace, generate, isGenerating, stop } from './generate'

/** Creates (and selects) a conversation that starts from the default parameters. */
export function newConversation(model: string): string {
  return chatStore.getState().create({ params: settingsStore.getState().defaultParams, model })
}

export function sendMessage(convId: string | null, text: string): string {
  const id = convId ?? newConversation(settingsStore.getState().lastModel)
  const messageId = newId()
  // Added after the end of the branch shown.
  chatStore.getState().addMessage(id, { id: messageId, role: 'user', content: text, createdAt: Date.now() })
  void generate(id, messageId)
  return id
}

/**
 * A new version of an answer, next to the old ones (‹ 2/2 ›). An answer that failed before any
 * text (the retry after an error) is replaced instead.
 */
export function regenerate(convId: string, answerId: string): void {
  const conv = chatStore.getState().conversations[convId]
  const answer = conv?.messages.find((m) => m.id === answerId)
  if (!conv || !answer || answer.role !== 'assistant' || isGenerating(conv)) return
  if (answer.status === 'error' && !answer.content) chatStore.getState().removeVersion(convId, answerId)
  // The first message of a conversation is the user's, so an answer always has a parent.
  if (answer.parentId) void generate(convId, answer.parentId)
}

/** The edited message becomes a new version of it; the original and its follow-up stay a branch. */
export function editAndResend(convId: string, messageId: string, text: string): void {
  const conv = chatStore.getState().conversations[convId]
  const original = conv?.messages.find((m) => m.id === messageId)
  if (!conv || !original || isGenerating(conv)) return
  const id = newId()
  chatStore.getState().addMessage(convId, {
    id,
    role: 'user',
    content: text,
    createdAt: Date.now(),
    parentId: original.parentId ?? null,
  })
  void generate(convId, id)
}

/** Shows the version `step` places from `messageId` (-1: the previous one) and what followed it. */
export function switchVersion(convId: string, messageId: string, step: number): void {
  const conv = chatStore.getState().conversations[convId]
  const target = conv && !isGenerating(conv) ? neighbourVersion(conv.messages, messageId, step) : null
  if (target) chatStore.getState().showVersion(convId, target)
}

/** Removes one version of a message (and its follow-up); the reader lands on a neighbour. */
export function deleteVersion(convId: string, messageId: string): void {
  const conv = chatStore.getState().conversations[convId]
  if (conv && !isGenerating(conv)) chatStore.getState().removeVersion(convId, messageId)
}

/**
 * Carries on an answer the length limit cut: in the same message where the server offers it,
 * else by asking for more in a new turn (`prompt`, in the reader's language).
 */
export async function continueAnswer(convId: string, answerId: string, prompt: string): Promise<void> {
  const conv = chatStore.getState().conversations[convId]
  if (!conv || isGenerating(conv)) return
  if (await continueInPlace(convId, answerId)) return
  const id = newId()
  chatStore.getState().addMessage(convId, { id, role: 'user', content: prompt, createdAt: Date.now(), parentId: answerId })
  void generate(convId, id)
}

export function removeConversation(convId: string): void {
  stop(convId)
  chatStore.getState().remove(convId)
}

/**
 * Saves one conversation's settings. New chats keep their defaults unless `asDefault` says so
 * (the system prompt and the tools are always the conversation's own).
 */
export function saveChatSettings(
  convId: string,
  settings: Pick<Conversation, 'systemPrompt' | 'params' | 'tools' | 'toolChoice'>,
  asDefault: boolean,
): void {
  chatStore.getState().patch(convId, settings)
  if (asDefault) settingsStore.getState().update({ defaultParams: settings.params })
}
