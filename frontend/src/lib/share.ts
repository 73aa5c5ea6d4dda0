import { splitThinking } from '../chat/thinking'
import { activePath } from '../store/branches'
import type { Conversation, Message } from '../types'

/** The words a shared file uses, in the reader's language. */
export interface ShareLabels {
  you: string
  assistant: string
  untitled: string
}

/** The branch shown, as (who, text) turns: answers without their reasoning, failed ones left out. */
function turns(conv: Conversation, labels: ShareLabels): { who: string; text: string }[] {
  return activePath(conv).flatMap((m: Message) => {
    const text = m.role === 'assistant' ? splitThinking(m).answer : m.content
    if (!text.trim()) return []
    const who = m.role === 'user' ? labels.you : m.model ? `${labels.assistant} (${m.model})` : labels.assistant
    return [{ who, text }]
  })
}

/** The conversation shown as a Markdown file: its title, then each turn under who wrote it. */
export function conversationMarkdown(conv: Conversation, labels: ShareLabels): string {
  const parts = turns(conv, labels).map((turn) => `### ${turn.who}\n\n${turn.text.trim()}\n`)
  return `# ${conv.title || labels.untitled}\n\n${parts.join('\n')}`
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * The conversation shown as one self-contained HTML file (no script, no outside resources): the
 * text as written (markdown unrendered, line breaks kept), readable in light and dark.
 */
export function conversationHtml(conv: Conversation, labels: ShareLabels, lang: string): string {
  const title = escapeHtml(conv.title || labels.untitled)
  const body = turns(conv, labels)
    .map(
      (turn) =>
        `<section><h2>${escapeHtml(turn.who)}</h2><div class="text">${escapeHtml(turn.text.trim())}</div></section>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="${escapeHtml(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.55; }
body { max-width: 760px; margin: 2rem auto; padding: 0 1rem; }
h2 { font-size: 0.9rem; color: GrayText; margin: 1.5rem 0 0.4rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>${title}</h1>
${body}
</body>
</html>
`
}

/** Offers `text` as a file download named `name`. */
export function download(name: string, text: string, type: string): void {
  const a = document.createElement('a')
  a.href = URL.createObjectURL(new Blob([text], { type }))
  a.download = name
  a.click()
  // Revoked after the click has been handled; Firefox reads the URL asynchronously.
  setTimeout(() => URL.revokeObjectURL(a.href), 1000)
}

/** A file name from the title: letters, digits and dashes (any script), at most 60 characters. */
export function fileName(title: string, ext: string): string {
  const base = title.normalize('NFKC').replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-|-$/g, '').slice(0, 60)
  return `${base || 'conversation'}.${ext}`
}
