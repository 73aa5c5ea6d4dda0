import { useEffect, useState } from 'react'
import { splitThinking } from '../chat/thinking'
import { useT } from '../i18n'
import { chatStore } from '../store/conversations'

const SPOKEN_CHARS = 600

/**
 * A polite live region that reads out an answer once, when it has finished: the message list
 * itself is not live, or a screen reader would speak every token as it streams.
 */
export function Announcer() {
  const t = useT()
  const [spoken, setSpoken] = useState('')

  useEffect(
    () =>
      chatStore.subscribe((s, prev) => {
        const last = s.activeId ? s.conversations[s.activeId]?.messages.at(-1) : undefined
        // Answers side by side say once that both have finished (Compare.tsx), not each in turn.
        if (last?.role !== 'assistant' || last.variant || prev.activeId !== s.activeId) return
        const before = prev.conversations[s.activeId ?? '']?.messages.find((m) => m.id === last.id)
        if (last.status === 'streaming') {
          if (before?.status !== 'streaming') setSpoken('')
          return
        }
        // Only the moment an answer in view finishes: not history, not a stopped or failed one.
        if (before?.status !== 'streaming' || last.status !== 'done') return
        const answer = splitThinking(last).answer.trim()
        if (answer) setSpoken(t('answerFinished', { text: answer.slice(0, SPOKEN_CHARS) }))
      }),
    [t],
  )

  return (
    <div className="visually-hidden" aria-live="polite" aria-atomic="true" data-testid="announcer">
      {spoken}
    </div>
  )
}
