import { useCallback, useEffect, useRef, useState } from 'react'
import { recognitionLang, recognizerClass, transcript, voiceProblem, withTranscript, type Recognizer } from '../chat/voice'
import { useLanguage, type MessageKey } from '../i18n'

export interface VoiceInput {
  /** False where the browser has no speech recognition: no button then. */
  supported: boolean
  listening: boolean
  problem: MessageKey | null
  toggle: () => void
  stop: () => void
}

/**
 * Dictation into the message box: what is heard goes after the text that was there when
 * listening began, revised as the recognizer revises its guess. The box is read-only meanwhile,
 * so a revision never overwrites typing.
 */
export function useVoiceInput(text: string, setText: (text: string) => void): VoiceInput {
  const lang = useLanguage()
  const Recognizer = recognizerClass()
  const [listening, setListening] = useState(false)
  const [problem, setProblem] = useState<MessageKey | null>(null)
  const current = useRef<Recognizer | null>(null)

  const stop = useCallback(() => current.current?.stop(), [])

  const toggle = useCallback(() => {
    if (current.current) {
      current.current.stop()
      return
    }
    if (!Recognizer) return
    const recognizer = new Recognizer()
    const before = text
    recognizer.lang = recognitionLang(lang, navigator.languages)
    recognizer.continuous = true
    recognizer.interimResults = true
    recognizer.onresult = (e) => setText(withTranscript(before, transcript(e)))
    recognizer.onerror = (e) => setProblem(voiceProblem(e.error))
    recognizer.onend = () => {
      current.current = null
      setListening(false)
    }
    current.current = recognizer
    setProblem(null)
    setListening(true)
    recognizer.start()
  }, [Recognizer, lang, setText, text])

  // Leaving the conversation (or the page) stops the microphone.
  useEffect(() => () => current.current?.stop(), [])

  return { supported: Recognizer !== null, listening, problem, toggle, stop }
}
