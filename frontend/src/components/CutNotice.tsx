import { continueAnswer } from '../chat/actions'
import { useT } from '../i18n'
import './CutNotice.css'

interface Props {
  convId: string
  messageId: string
  /** Continue is offered on the last answer of the branch, when no answer is streaming. */
  canContinue: boolean
}

/** An answer that stopped at the length limit (`finish_reason: length`) says so, and offers Continue. */
export function CutNotice({ convId, messageId, canContinue }: Props) {
  const t = useT()
  return (
    <div className="cut-notice" role="note">
      <span>{t('cutAtLength')}</span>
      {canContinue && (
        <button
          type="button"
          className="btn small"
          onClick={() => void continueAnswer(convId, messageId, t('continuePrompt'))}
        >
          {t('continue')}
        </button>
      )}
    </div>
  )
}
