import { DEFAULT_PARAMS, type Conversation, type Message } from '../types'

/** A conversation as the store saves it, holding `messages`. */
export function savedConversation(id: string, messages: Message[]): Conversation {
  return { id, title: 't', createdAt: 1, updatedAt: 1, systemPrompt: '', params: DEFAULT_PARAMS, model: 'm', messages }
}
