import { useEffect, useMemo, useState } from 'react'
import { useT } from '../i18n'
import { CopyButton } from '../ui/CopyButton'
import { highlight } from './highlighter'
import { pieceEnds } from './pieces'

interface Shown {
  code: string
  html: string[]
  /** How many pieces are highlighted in the page so far. */
  count: number
}

/**
 * A finished block's highlighting: worked out in a worker, then swapped in one piece per task,
 * so neither step holds the main thread for long however long the code is. A growing block (or
 * one in a language highlight.js does not know) stays plain text.
 */
function useHighlighted(code: string, language: string | undefined, final: boolean): Shown | null {
  const [shown, setShown] = useState<Shown | null>(null)
  useEffect(() => {
    if (!final || !language) return
    let cancelled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    void highlight(code, language).then((html) => {
      if (cancelled || !html) return
      const show = (count: number) => {
        setShown({ code, html, count })
        if (count < html.length) timer = setTimeout(() => show(count + 1), 0)
      }
      show(1)
    })
    return () => {
      cancelled = true
      clearTimeout(timer)
    }
  }, [code, language, final])
  return shown?.code === code ? shown : null
}

/**
 * A code block as pieces of 200 lines: the browser lays out and paints only the pieces near the
 * viewport (content-visibility), and a streaming block changes only its last piece.
 */
export function CodeBlock({ code, language, final }: { code: string; language?: string; final: boolean }) {
  const t = useT()
  const ends = useMemo(() => pieceEnds(code), [code])
  const shown = useHighlighted(code, language, final)
  return (
    <div className="code-block">
      <div className="code-head">
        <span className="code-lang">{language ?? 'text'}</span>
        <CopyButton text={code.replace(/\n$/, '')} label={t('copyCode')} />
      </div>
      <pre>
        <code className={[shown && 'hljs', language && `language-${language}`].filter(Boolean).join(' ') || undefined}>
          {ends.map((end, i) => {
            const html = shown && i < shown.count ? shown.html[i] : undefined
            // highlightPieces escapes all text and adds only its own <span class="hljs-…">.
            if (html !== undefined) return <span key={i} className="code-piece" dangerouslySetInnerHTML={{ __html: html }} />
            return (
              <span key={i} className="code-piece">
                {code.slice(ends[i - 1] ?? 0, end)}
              </span>
            )
          })}
        </code>
      </pre>
    </div>
  )
}
