import { describe, expect, it } from 'vitest'
import { savedConversation } from '../testing/conversations'
import { withParents } from '../store/branches'
import { conversationHtml, conversationMarkdown, fileName } from './share'

const labels = { you: 'You', assistant: 'Assistant', untitled: 'New conversation' }
const conv = {
  ...savedConversation(
    'c',
    withParents([
      { id: 'q', role: 'user', content: 'Is 2 < 3?', createdAt: 0 },
      { id: 'a', role: 'assistant', content: '<think>easy</think>Yes: **2 < 3**.', createdAt: 1, model: 'tiny' },
      { id: 'f', role: 'assistant', content: '', createdAt: 2, status: 'error' },
    ]),
  ),
  title: 'Maths <b>',
}

describe('sharing a conversation', () => {
  it('as Markdown: the title, then each turn under who wrote it, without reasoning or failed answers', () => {
    expect(conversationMarkdown(conv, labels)).toBe(
      '# Maths <b>\n\n### You\n\nIs 2 < 3?\n\n### Assistant (tiny)\n\nYes: **2 < 3**.\n',
    )
  })

  it('as HTML: self-contained, every text escaped, no script', () => {
    const html = conversationHtml(conv, labels, 'en')
    expect(html).toContain('<title>Maths &lt;b&gt;</title>')
    expect(html).toContain('<div class="text">Yes: **2 &lt; 3**.</div>')
    expect(html).not.toMatch(/<script|<link|src=|easy/)
  })

  it('names the file after the title', () => {
    expect(fileName('Maths <b>: 2 < 3?', 'md')).toBe('Maths-b-2-3.md')
    expect(fileName('数学 问题', 'html')).toBe('数学-问题.html')
    expect(fileName('???', 'md')).toBe('conversation.md')
  })
})
