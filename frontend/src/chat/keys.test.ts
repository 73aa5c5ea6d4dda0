import { describe, expect, it } from 'vitest'
import { isSendKey } from './keys'

const key = (over: Partial<Parameters<typeof isSendKey>[0]>) => ({
  key: 'Enter',
  shiftKey: false,
  isComposing: false,
  keyCode: 13,
  ...over,
})

describe('isSendKey', () => {
  it('sends on Enter, not on Shift+Enter or other keys', () => {
    expect(isSendKey(key({}))).toBe(true)
    expect(isSendKey(key({ shiftKey: true }))).toBe(false)
    // A touch screen: Enter is a new line, the button sends.
    expect(isSendKey(key({}), false)).toBe(false)
    expect(isSendKey(key({ key: 'a', keyCode: 65 }))).toBe(false)
  })

  it('never sends on the Enter that confirms an IME candidate', () => {
    // Chrome and Firefox: the keydown comes while composing.
    expect(isSendKey(key({ isComposing: true, keyCode: 229 }))).toBe(false)
    // Safari: compositionend fires first, then a keydown with isComposing false but keyCode 229.
    expect(isSendKey(key({ isComposing: false, keyCode: 229 }))).toBe(false)
    // The next, real Enter sends.
    expect(isSendKey(key({}))).toBe(true)
  })
})
