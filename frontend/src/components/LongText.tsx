import { useState } from 'react'
import { useT } from '../i18n'

const LONG_CHARS = 1500
const LONG_LINES = 16

/** A long user message shows its start, with Show more / Show less, instead of a page-long bubble. */
export function LongText({ text }: { text: string }) {
  const t = useT()
  const [open, setOpen] = useState(false)
  const long = text.length > LONG_CHARS || text.split('\n', LONG_LINES + 1).length > LONG_LINES
  if (!long) return <div className="bubble">{text}</div>
  return (
    <div className={`bubble long${open ? ' open' : ''}`}>
      <div className="long-text">{text}</div>
      <button type="button" className="btn small show-more" aria-expanded={open} onClick={() => setOpen(!open)}>
        {t(open ? 'showLess' : 'showMore')}
      </button>
    </div>
  )
}
