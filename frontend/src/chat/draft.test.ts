// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import { uiStore } from '../store/ui'
import { DEFAULT_PARAMS } from '../types'
import { newConversation, saveChatSettings } from './actions'

describe('conversation settings chosen on the welcome screen', () => {
  it('create no conversation; the next new one starts with them, once', () => {
    settingsStore.getState().update({ defaultParams: DEFAULT_PARAMS })
    const before = Object.keys(chatStore.getState().conversations).length
    const params = { ...DEFAULT_PARAMS, max_tokens: 12 }
    saveChatSettings(null, { systemPrompt: 'Talk like a pirate.', params }, false)
    expect(Object.keys(chatStore.getState().conversations)).toHaveLength(before)
    expect(uiStore.getState().draft).toEqual({ systemPrompt: 'Talk like a pirate.', params })

    const first = newConversation('m')
    expect(chatStore.getState().conversations[first]).toMatchObject({ systemPrompt: 'Talk like a pirate.', params })
    expect(uiStore.getState().draft).toBeNull()
    const second = newConversation('m')
    expect(chatStore.getState().conversations[second]).toMatchObject({ systemPrompt: '', params: DEFAULT_PARAMS })
  })
})
