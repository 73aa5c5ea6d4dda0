import { useEffect, useState } from 'react'
import { useT } from '../i18n'
import { copyText } from '../lib/clipboard'
import { CheckIcon, CopyIcon } from './icons'
import { IconButton } from './IconButton'

export function CopyButton({ text, label }: { text: string; label: string }) {
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
      onClick={() => void copyText(text).then(() => setCopied(true))}
    >
      {copied ? <CheckIcon /> : <CopyIcon />}
    </IconButton>
  )
}
