import { describe, expect, it } from 'vitest'
import { resolveLanguage, translator } from './i18n'

describe('i18n', () => {
  it('follows the browser language unless the user chose one', () => {
    expect(resolveLanguage('auto', ['zh-CN', 'en'])).toBe('zh')
    expect(resolveLanguage('auto', ['zh-Hans'])).toBe('zh')
    expect(resolveLanguage('auto', ['fr-FR', 'en-GB', 'zh'])).toBe('en')
    expect(resolveLanguage('auto', ['de'])).toBe('en')
    expect(resolveLanguage('en', ['zh-CN'])).toBe('en')
    expect(resolveLanguage('zh', ['en-US'])).toBe('zh')
  })

  it('fills in placeholders', () => {
    expect(translator('en')('tokensPerSecond', { n: '12.5' })).toBe('12.5 tokens/s')
    expect(translator('zh')('tokensPerSecond', { n: '12.5' })).toBe('12.5 词元/秒')
    expect(translator('zh')('newChat')).toBe('新对话')
  })
})
