import { newId } from '../lib/id'
import { neighbourVersion } from '../store/branches'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import type { Attachment, Conversation } from '../types'
import { uiStore, type ChatDraft } from '../store/ui'
import { continueInPlace, generate, isGenerating, stop } from './generate'

/**
 * Creates (and selects) a conversation that starts from the default parameters, or from the
 * settings chosen for it on the welcome screen.
 */
export function newConversation(model: string): string {
  const { draft } = uiStore.getState()
  const id = chatStore.getState().create({ params: draft?.params ?? settingsStore.getState().defaultParams, model })
  if (draft) {
    chatStore.getState().patch(id, { systemPrompt: draft.systemPrompt, tools: draft.tools, toolChoice: draft.toolChoice })
    uiStore.setState({ draft: null })
  }
  return id
}

/** Sends a message and asks for the answer; false (nothing sent) while another tab is answering there. */
export function sendMessage(convId: string | null, text: string, attachments: Attachment[] = []): Promise<boolean> {
  const id = convId ?? newConversation(settingsStore.getState().lastModel)
  const messageId = newId()
  // Added after the end of the branch shown.
  return generate(id, messageId, () =>
    chatStore.getState().addMessage(id, {
      id: messageId,
      role: 'user',
      content: text,
      createdAt: Date.now(),
      ...(attachments.length ? { attachments } : {}),
    }),
  )
}

/**
 * A new version of an answer, next to the old ones (‹ 2/2 ›). An answer that failed before any
 * text (the retry after an error) is replaced instead.
 */
export function regenerate(convId: string, answerId: string): void {
  const conv = chatStore.getState().conversations[convId]
  const answer = conv?.messages.find((m) => m.id === answerId)
  if (!conv || !answer || answer.role !== 'assistant' || isGenerating(conv)) return
  // The first message of a conversation is the user's, so an answer always has a parent.
  if (!answer.parentId) return
  void generate(convId, answer.parentId, () => {
    if (answer.status === 'error' && !answer.content) chatStore.getState().removeVersion(convId, answerId)
  })
}

/** The edited message becomes a new version of it; the original and its follow-up stay a branch. */
export function editAndResend(convId: string, messageId: string, text: string): void {
  const conv = chatStore.getState().conversations[convId]
  const original = conv?.messages.find((m) => m.id === messageId)
  if (!conv || !original || isGenerating(conv)) return
  const id = newId()
  // The edited question keeps its files; their passages are chosen again for the new wording.
  void generate(convId, id, () =>
    chatStore.getState().addMessage(convId, {
      id,
      role: 'user',
      content: text,
      createdAt: Date.now(),
      parentId: original.parentId ?? null,
      ...(original.attachments?.length ? { attachments: original.attachments } : {}),
    }),
  )
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
  void generate(convId, id, () =>
    chatStore.getState().addMessage(convId, { id, role: 'user', content: prompt, createdAt: Date.now(), parentId: answerId }),
  )
}

/** Deletes a conversation (stopping its answer); returns it, for Undo to put back. */
export function removeConversation(convId: string): Conversation | undefined {
  const conv = chatStore.getState().conversations[convId]
  stop(convId)
  chatStore.getState().remove(convId)
  return conv
}

/**
 * Saves one conversation's settings. New chats keep their defaults unless `asDefault` says so
 * (the system prompt and the tools are always the conversation's own).
 */
export function saveChatSettings(convId: string | null, settings: ChatDraft, asDefault: boolean): void {
  // No conversation yet (the welcome screen): the first message creates it with these.
  if (convId) chatStore.getState().patch(convId, settings)
  else uiStore.setState({ draft: settings })
  if (asDefault) settingsStore.getState().update({ defaultParams: settings.params })
}
