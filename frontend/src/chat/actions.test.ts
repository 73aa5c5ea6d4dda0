// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import { DEFAULT_PARAMS } from '../types'
import { newConversation, saveChatSettings } from './actions'

describe('conversation settings and the defaults for new chats', () => {
  it('a chat keeps its own parameters; new chats keep the defaults unless saved as default', () => {
    settingsStore.getState().update({ defaultParams: DEFAULT_PARAMS })
    const first = newConversation('m')
    const own = { ...DEFAULT_PARAMS, max_tokens: 77, seed: 7 }
    saveChatSettings(first, { systemPrompt: 'Be brief.', params: own }, false)
    expect(chatStore.getState().conversations[first]).toMatchObject({ systemPrompt: 'Be brief.', params: own })
    expect(settingsStore.getState().defaultParams).toEqual(DEFAULT_PARAMS)
    const second = newConversation('m')
    expect(chatStore.getState().conversations[second]?.params).toEqual(DEFAULT_PARAMS)

    const chosen = { ...DEFAULT_PARAMS, temperature: 0.2 }
    saveChatSettings(first, { systemPrompt: 'Be brief.', params: chosen }, true)
    const third = newConversation('m')
    expect(chatStore.getState().conversations[third]).toMatchObject({ params: chosen, systemPrompt: '' })
  })
})
