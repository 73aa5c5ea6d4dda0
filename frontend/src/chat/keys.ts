/** The parts of a keydown that decide whether Enter sends. */
export interface EnterKey {
  key: string
  shiftKey: boolean
  isComposing: boolean
  keyCode: number
}

/**
 * Enter sends, Shift+Enter makes a new line, and an Enter that confirms an IME candidate (Chinese,
 * Japanese input) never sends: it arrives with isComposing set, or (Safari, after compositionend)
 * with isComposing false but keyCode 229, the code of a key the IME handled.
 */
export function isSendKey(e: EnterKey, enterSends = true): boolean {
  return enterSends && e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229
}

/**
 * Whether Enter sends here: not on a touch screen (a phone's keyboard has no Shift+Enter to
 * reach for, so Enter makes a new line there, as in its messaging apps, and the button sends).
 */
export const enterSends = (): boolean => !matchMedia('(hover: none) and (pointer: coarse)').matches
