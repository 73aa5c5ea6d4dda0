import { useEffect, useState } from 'react'
import { useT } from '../i18n'
import { copyText } from '../lib/clipboard'
import { CheckIcon, CopyIcon } from './icons'
import { IconButton } from './IconButton'

/**
 * Copies `text` (a function: worked out only when clicked); `caption`, when given, shows beside
 * the icon (to tell apart two copy buttons side by side).
 */
export function CopyButton({ text, label, caption }: { text: string | (() => string); label: string; caption?: string }) {
  const t = useT()
  const [copied, setCopied] = useState(false)
  useEffect(() => {
    if (!copied) return
    const timer = setTimeout(() => setCopied(false), 1500)
    return () => clearTimeout(timer)
  }, [copied])
  return (
    <IconButton
      label={copied ? t('copied') : label}
      small
      className={caption ? 'with-caption' : undefined}
      onClick={() => void copyText(typeof text === 'string' ? text : text()).then(() => setCopied(true))}
    >
      {copied ? <CheckIcon /> : <CopyIcon />}
      {caption && <span>{caption}</span>}
    </IconButton>
  )
}
