import { useEffect, useState } from 'react'
import { useT } from '../i18n'
import { copyText } from '../lib/clipboard'
import { CheckIcon, CopyIcon } from './icons'

export function CopyButton({ text, label }: { text: string; label: string }) {
  const t = useT()
  const [copied, setCopied] = useState(false)
  useEffect(() => {
    if (!copied) return
    const timer = setTimeout(() => setCopied(false), 1500)
    return () => clearTimeout(timer)
  }, [copied])
  return (
    <button
      type="button"
      className="icon-btn small"
      aria-label={copied ? t('copied') : label}
      title={copied ? t('copied') : label}
      onClick={() => void copyText(text).then(() => setCopied(true))}
    >
      {copied ? <CheckIcon /> : <CopyIcon />}
    </button>
  )
}
