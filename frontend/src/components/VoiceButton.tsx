import { useT } from '../i18n'
import { MicIcon } from '../ui/icons'
import type { VoiceInput } from './useVoiceInput'

/** Starts and stops dictation; absent where the browser cannot recognise speech. Its tooltip
 *  says who hears the audio: the browser's recognizer, not the local model. */
export function VoiceButton({ voice, disabled }: { voice: VoiceInput; disabled?: boolean }) {
  const t = useT()
  if (!voice.supported) return null
  const label = voice.listening ? t('voiceStop') : t('voiceStart')
  return (
    <button
      type="button"
      className={`icon-btn voice-btn${voice.listening ? ' listening' : ''}`}
      aria-label={label}
      title={`${label}: ${t('voiceHint')}`}
      aria-pressed={voice.listening}
      disabled={disabled && !voice.listening}
      onClick={voice.toggle}
    >
      <MicIcon />
    </button>
  )
}
