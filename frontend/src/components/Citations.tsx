import { citedPassages } from '../documents/prompt'
import { useT } from '../i18n'
import type { Passage } from '../types'
import './Attachments.css'

/**
 * Under an answer to a question about files: the passages it cites ([n] in its text), each
 * expandable to its text; when it cites none, every passage it was given, said as such.
 */
export function Citations({ answer, sources }: { answer: string; sources: readonly Passage[] }) {
  const t = useT()
  const cited = citedPassages(answer, sources)
  const shown = cited.length ? cited : sources
  return (
    <section className="citations" aria-label={t(cited.length ? 'sourcesCited' : 'sourcesGiven')}>
      <h3 className="citations-title">{t(cited.length ? 'sourcesCited' : 'sourcesGiven')}</h3>
      <ol>
        {shown.map((p) => (
          <li key={p.n}>
            <details className="citation">
              <summary>
                <span className="citation-n">[{p.n}]</span> <span className="citation-file">{p.file}</span>{' '}
                <span className="muted">
                  · {p.total === 1 ? t('wholeFile') : t('passageOf', { i: p.index + 1, n: p.total })}
                </span>
              </summary>
              <blockquote className="citation-text">{p.text}</blockquote>
            </details>
          </li>
        ))}
      </ol>
    </section>
  )
}
