import { newId } from '../lib/id'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import { uiStore, type ChatDraft } from '../store/ui'
import type { Attachment } from '../types'
import { generate, isGenerating, stop } from './generate'

/**
 * Creates (and selects) a conversation that starts from the default parameters, or from the
 * settings chosen for it on the welcome screen.
 */
export function newConversation(model: string): string {
  const { draft } = uiStore.getState()
  const id = chatStore.getState().create({ params: draft?.params ?? settingsStore.getState().defaultParams, model })
  if (draft) {
    chatStore.getState().patch(id, { systemPrompt: draft.systemPrompt })
    uiStore.setState({ draft: null })
  }
  return id
}

export function sendMessage(convId: string | null, text: string, attachments: Attachment[] = []): string {
  const id = convId ?? newConversation(settingsStore.getState().lastModel)
  chatStore.getState().addMessage(id, {
    id: newId(),
    role: 'user',
    content: text,
    createdAt: Date.now(),
    ...(attachments.length ? { attachments } : {}),
  })
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
  // The edited question keeps its files; their passages are chosen again for the new wording.
  const attachments = chat.conversations[convId]?.messages.find((m) => m.id === messageId)?.attachments
  chat.truncateFrom(convId, messageId)
  sendMessage(convId, text, attachments)
}

export function removeConversation(convId: string): void {
  stop(convId)
  chatStore.getState().remove(convId)
}

/**
 * Saves one conversation's settings. New chats keep their defaults unless `asDefault` says so
 * (the system prompt is always the conversation's own).
 */
export function saveChatSettings(convId: string | null, settings: ChatDraft, asDefault: boolean): void {
  // No conversation yet (the welcome screen): the first message creates it with these.
  if (convId) chatStore.getState().patch(convId, settings)
  else uiStore.setState({ draft: settings })
  if (asDefault) settingsStore.getState().update({ defaultParams: settings.params })
}
