import { useId, useState, type KeyboardEvent } from 'react'
import { useStore } from 'zustand'
import { matchPrompts, slashQuery } from '../chat/slash'
import { useT } from '../i18n'
import { settingsStore } from '../store/settings'

/**
 * The prompt library under `/` at the start of the message box: a listbox filtered by what follows
 * the slash, driven from the box (arrows, Enter or Tab to insert, Esc to close) with
 * aria-activedescendant, so focus stays in the box. Returns the box's extra ARIA attributes, its
 * key handler (true when it took the key) and the list to render beside it.
 */
export function usePromptMenu(text: string, insert: (text: string) => void) {
  const t = useT()
  const prompts = useStore(settingsStore, (s) => s.prompts)
  const id = useId()
  const [active, setActive] = useState(0)
  // The text for which Esc closed the menu: it stays closed until the text changes.
  const [dismissed, setDismissed] = useState<string | null>(null)
  // Any other text forgets it, so that typing the same `/…` again opens the list again.
  if (dismissed !== null && dismissed !== text) setDismissed(null)
  const query = slashQuery(text)
  const open = query !== null && dismissed !== text
  const matches = open ? matchPrompts(prompts, query) : []
  const current = Math.min(active, Math.max(matches.length - 1, 0))
  const optionId = (i: number) => `${id}-option-${i}`

  const choose = (i: number) => {
    const prompt = matches[i]
    if (!prompt) return
    insert(prompt.text)
    // A prompt that itself starts with a slash does not reopen the list.
    setDismissed(prompt.text)
    setActive(0)
  }

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>): boolean => {
    if (!open) return false
    if (e.key === 'Escape') {
      // Closes the list only: Esc's other job (stopping an answer) waits for the next press.
      e.preventDefault()
      setDismissed(text)
      return true
    }
    if (matches.length === 0) return false
    const step = e.key === 'ArrowDown' ? 1 : e.key === 'ArrowUp' ? -1 : 0
    if (step) {
      e.preventDefault()
      setActive((current + step + matches.length) % matches.length)
      return true
    }
    if ((e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) || e.key === 'Tab') {
      e.preventDefault()
      choose(current)
      return true
    }
    return false
  }

  const inputProps = open
    ? {
        'aria-autocomplete': 'list' as const,
        'aria-controls': matches.length ? id : undefined,
        'aria-activedescendant': matches.length ? optionId(current) : undefined,
        // Leaving the box (a click elsewhere) closes the list as Esc does.
        onBlur: () => setDismissed(text),
      }
    : {}

  const menu = open ? (
    <div className="prompt-menu">
      {matches.length === 0 ? (
        <p className="muted" role="status">
          {prompts.length === 0 ? t('promptMenuEmpty') : t('promptMenuNoMatch', { q: query })}
        </p>
      ) : (
        <ul id={id} role="listbox" aria-label={t('promptMenu')}>
          {matches.map((p, i) => (
            <li
              key={p.name}
              id={optionId(i)}
              role="option"
              aria-selected={i === current}
              // The box keeps the focus: a click picks without taking it away.
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => choose(i)}
              onMouseEnter={() => setActive(i)}
            >
              <strong>{p.name}</strong>
              <span className="muted">{p.text}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  ) : null

  return { inputProps, onKeyDown, menu }
}
