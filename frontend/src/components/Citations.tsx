import { citedPassages, matchedPassages } from '../documents/prompt'
import { useT, type MessageKey } from '../i18n'
import type { Passage } from '../types'
import './Attachments.css'

/** Which passages to show under an answer, and how they were found. */
function sourcesOf(answer: string, sources: readonly Passage[]): { title: MessageKey; shown: readonly Passage[] } {
  const cited = citedPassages(answer, sources)
  if (cited.length) return { title: 'sourcesCited', shown: cited }
  const matched = matchedPassages(answer, sources)
  if (matched.length) return { title: 'sourcesMatched', shown: matched }
  return { title: 'sourcesGiven', shown: sources }
}

/**
 * Under an answer to a question about files: the passages it cites ([n] in its text); when it
 * cites none, those its wording comes from; failing that, every passage it was given, said as
 * such. Each expands to its text.
 */
export function Citations({ answer, sources }: { answer: string; sources: readonly Passage[] }) {
  const t = useT()
  const { title, shown } = sourcesOf(answer, sources)
  return (
    <section className="citations" aria-label={t(title)}>
      <h3 className="citations-title">{t(title)}</h3>
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
