import { describe, expect, it } from 'vitest'
import { messageTime } from './time'

describe('messageTime', () => {
  const now = new Date(2026, 11, 7, 21, 30)
  it('shows the time today, the day this year, the full date before', () => {
    expect(messageTime(new Date(2026, 11, 7, 9, 5).getTime(), now, 'en-GB')).toBe('09:05')
    expect(messageTime(new Date(2026, 2, 14, 9, 5).getTime(), now, 'en-GB')).toBe('14 Mar, 09:05')
    expect(messageTime(new Date(2025, 2, 14, 9, 5).getTime(), now, 'en-GB')).toBe('14 Mar 2025, 09:05')
    expect(messageTime(new Date(2026, 11, 7, 9, 5).getTime(), now, 'zh-CN')).toBe('09:05')
    expect(messageTime(new Date(2026, 2, 14, 9, 5).getTime(), now, 'zh-CN')).toBe('3月14日 09:05')
  })
})
