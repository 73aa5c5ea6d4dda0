import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import type { Conversation } from '../types'
import { generate, isGenerating, stop } from './generate'

/** Creates (and selects) a conversation that starts from the default parameters. */
export function newConversation(model: string): string {
  return chatStore.getState().create({ params: settingsStore.getState().defaultParams, model })
}

export function sendMessage(convId: string | null, text: string): string {
  const id = convId ?? newConversation(settingsStore.getState().lastModel)
  chatStore.getState().addMessage(id, { id: newId(), role: 'user', content: text, createdAt: Date.now() })
  void generate(id)
  return id
}

/** Replaces the last answer (also the retry after an error). */
export function regenerate(convId: string): void {
  const last = chatStore.getState().conversations[convId]?.messages.at(-1)
  if (!last || last.status === 'streaming') return
  if (last.role === 'assistant') chatStore.getState().truncateFrom(convId, last.id)
  void generate(convId)
}

/** The edited message replaces the original and everything after it. */
export function editAndResend(convId: string, messageId: string, text: string): void {
  const chat = chatStore.getState()
  if (isGenerating(chat.conversations[convId])) return
  chat.truncateFrom(convId, messageId)
  sendMessage(convId, text)
}

export function removeConversation(convId: string): void {
  stop(convId)
  chatStore.getState().remove(convId)
}

/**
 * Saves one conversation's settings. New chats keep their defaults unless `asDefault` says so
 * (the system prompt is always the conversation's own).
 */
export function saveChatSettings(
  convId: string,
  settings: Pick<Conversation, 'systemPrompt' | 'params'>,
  asDefault: boolean,
): void {
  chatStore.getState().patch(convId, settings)
  if (asDefault) settingsStore.getState().update({ defaultParams: settings.params })
}
