import { defaultUrlTransform } from 'react-markdown'

/** Only absolute http(s) and mailto links survive; `javascript:`, `data:` and relative ones become empty. */
export function safeUrl(url: string): string {
  const cleaned = defaultUrlTransform(url)
  return /^(https?:|mailto:)/i.test(cleaned) ? cleaned : ''
}
