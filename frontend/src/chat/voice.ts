import type { Language, MessageKey } from '../i18n'

/** What the page uses of the Web Speech API's recognizer (Chromium and Safari prefix it). */
export interface Recognizer {
  lang: string
  continuous: boolean
  interimResults: boolean
  onresult: ((e: RecognitionEvent) => void) | null
  onerror: ((e: { error: string }) => void) | null
  onend: (() => void) | null
  start(): void
  stop(): void
}

/** A result list as the API gives it: each result's best alternative, and whether it is final. */
export interface RecognitionEvent {
  results: ArrayLike<ArrayLike<{ transcript: string }> & { isFinal: boolean }>
}

type RecognizerClass = new () => Recognizer

/** The browser's recognizer, or null where it has none (Firefox): then there is no voice button. */
export function recognizerClass(w: object = window): RecognizerClass | null {
  const found = w as { SpeechRecognition?: RecognizerClass; webkitSpeechRecognition?: RecognizerClass }
  return found.SpeechRecognition ?? found.webkitSpeechRecognition ?? null
}

/** Everything heard so far, final results and the guess still being revised, as one text. */
export function transcript(e: RecognitionEvent): string {
  return Array.from(e.results, (r) => r[0]?.transcript ?? '')
    .join('')
    .trim()
}

/** The box's text with what was heard after it: a space between, none at the start. */
export function withTranscript(before: string, heard: string): string {
  if (!heard) return before
  if (!before.trim()) return heard
  return /\s$/.test(before) ? before + heard : `${before} ${heard}`
}

/** The recognizer's language: the browser's own tag where it is the page's language, as a
 *  Briton's `en-GB`, else the usual one for the page's language. */
export function recognitionLang(lang: Language, browser: readonly string[]): string {
  const own = browser.find((tag) => tag.toLowerCase().startsWith(lang) && tag.includes('-'))
  return own ?? (lang === 'zh' ? 'zh-CN' : 'en-US')
}

/** What to tell the user for the API's error codes; null for a stop the user asked for. */
export function voiceProblem(error: string): MessageKey | null {
  switch (error) {
    case 'aborted':
      return null
    case 'not-allowed':
    case 'service-not-allowed':
      return 'voiceDenied'
    case 'no-speech':
      return 'voiceNoSpeech'
    case 'audio-capture':
      return 'voiceNoMicrophone'
    default:
      // 'network' and the rest: the browser's speech service could not answer.
      return 'voiceUnavailable'
  }
}
