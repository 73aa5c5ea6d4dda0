import { memo, useState, type KeyboardEvent } from 'react'
import { continueAnswer, editAndResend, regenerate } from '../chat/actions'
import { enterSends, isSendKey } from '../chat/keys'
import { splitThinking } from '../chat/thinking'
import { useLanguage, useT, type Translate } from '../i18n'
import { fullTime, messageTime } from '../lib/time'
import { Markdown } from '../markdown/Markdown'
import type { Message, Metrics } from '../types'
import { CopyButton } from '../ui/CopyButton'
import { BranchSwitch } from './BranchSwitch'
import { CutNotice } from './CutNotice'
import { AttachmentChips } from './Attachments'
import { Citations } from './Citations'
import { ErrorNotice } from './ErrorNotice'
import { LongText } from './LongText'
import { ToolCalls } from './ToolCalls'
import { EditIcon, RefreshIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './MessageView.css'

function metricsText(m: Metrics, t: Translate): string[] {
  const parts = [t(m.approximate ? 'tokensApprox' : 'tokens', { n: m.completionTokens })]
  if (m.tokensPerSecond !== null) parts.push(t('tokensPerSecond', { n: m.tokensPerSecond.toFixed(1) }))
  if (m.ttftMs !== null) parts.push(t('ttft', { n: (m.ttftMs / 1000).toFixed(2) }))
  return parts
}

interface Props {
  convId: string
  message: Message
  /** The last message of the branch shown: the one that can be retried or continued. */
  isLast: boolean
  /** An answer is streaming in this conversation: editing, regenerating and switching wait. */
  busy: boolean
  /** Which version of this message it is (1-based) and how many there are (store/branches.ts). */
  version: number
  versions: number
  /** In side-by-side columns (Compare.tsx): no Regenerate, which would end the comparison unkept. */
  compared?: boolean
}

export const MessageView = memo(function MessageView(props: Props) {
  return props.message.role === 'user' ? <UserMessage {...props} /> : <AssistantMessage {...props} />
})

function UserMessage({ convId, message, busy, version, versions }: Props) {
  const t = useT()
  const [draft, setDraft] = useState<string | null>(null)

  if (draft !== null) {
    const submit = () => {
      if (!draft.trim()) return
      setDraft(null)
      editAndResend(convId, message.id, draft)
    }
    const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
      if (isSendKey({ ...e, isComposing: e.nativeEvent.isComposing }, enterSends())) {
        e.preventDefault()
        submit()
      }
      if (e.key === 'Escape') {
        e.stopPropagation()
        setDraft(null)
      }
    }
    return (
      <article className="msg user editing">
        <textarea
          className="edit-box"
          aria-label={t('editMessage')}
          value={draft}
          autoFocus
          rows={Math.min(12, draft.split('\n').length + 1)}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <div className="row end">
          <button type="button" className="btn small" onClick={() => setDraft(null)}>
            {t('cancel')}
          </button>
          <button type="button" className="btn primary small" disabled={!draft.trim()} onClick={submit}>
            {t('saveAndSend')}
          </button>
        </div>
      </article>
    )
  }

  return (
    <article className="msg user" aria-label={t('you')}>
      {message.attachments && <AttachmentChips items={message.attachments} />}
      <LongText text={message.content} />
      <div className="msg-actions">
        <CopyButton text={message.content} label={t('copyMessage')} />
        <IconButton
          label={t('editMessage')}
          small
          disabled={busy}
          onClick={() => setDraft(message.content)}
        >
          <EditIcon />
        </IconButton>
        <BranchSwitch convId={convId} messageId={message.id} version={version} versions={versions} busy={busy} />
      </div>
    </article>
  )
}

/**
 * The reasoning before an answer, collapsible: open while it streams and the answer has not
 * begun, closed after that unless the reader opened it.
 */
function Reasoning({ text, live }: { text: string; live: boolean }) {
  const t = useT()
  const [chosen, setChosen] = useState<boolean | null>(null)
  const open = chosen ?? live
  return (
    <details className="reasoning" open={open} onToggle={(e) => e.currentTarget.open !== open && setChosen(e.currentTarget.open)}>
      <summary>{t(live ? 'reasoningLive' : 'reasoning')}</summary>
      {open && <Markdown text={text} streaming={live} />}
    </details>
  )
}

/** When the message was written (its full date and time on hover). */
function MessageTime({ at }: { at: number }) {
  const locale = useLanguage() === 'zh' ? 'zh-CN' : 'en'
  // "Today" or a date is judged against when the message was first shown, not at every render.
  const [shownAt] = useState(() => new Date())
  return (
    <time className="msg-time" dateTime={new Date(at).toISOString()} title={fullTime(at, locale)}>
      {messageTime(at, shownAt, locale)}
    </time>
  )
}

function AssistantMessage({ convId, message, isLast, busy, version, versions, compared }: Props) {
  const t = useT()
  const streaming = message.status === 'streaming'
  const { reasoning, answer } = splitThinking(message)
  const again = busy || compared ? undefined : () => regenerate(convId, message.id)
  const retry = isLast ? again : undefined
  const error =
    message.error ?? (message.status === 'error' ? { kind: 'server' as const, message: '' } : undefined)
  return (
    <article className="msg assistant" aria-label={t('assistant')} aria-busy={streaming}>
      {reasoning !== null && <Reasoning text={reasoning} live={streaming && !answer} />}
      {answer ? (
        <Markdown text={answer} streaming={streaming} />
      ) : (
        streaming &&
        reasoning === null &&
        !message.toolCalls?.length && (
          <p className="thinking" role="status">
            {/* A long prompt takes the model a while to read: say so, with its size. */}
            {message.searching ? (
              <span className="reading">{t('searchingFiles')}</span>
            ) : message.promptTokensEstimate ? (
              <span className="reading">{t('readingTokens', { n: message.promptTokensEstimate.toLocaleString() })}</span>
            ) : (
              <span className="visually-hidden">{t('thinking')}</span>
            )}
            <i />
            <i />
            <i />
          </p>
        )
      )}
      {streaming && message.metrics?.tokensPerSecond != null && (
        <span className="live-rate">{t('tokensPerSecond', { n: message.metrics.tokensPerSecond.toFixed(1) })}</span>
      )}
      {!streaming && message.sources && <Citations answer={answer} sources={message.sources} />}
      {message.toolCalls?.length ? <ToolCalls calls={message.toolCalls} /> : null}
      {message.status === 'stopped' && <span className="badge">{t('stopped')}</span>}
      {message.status === 'interrupted' && !message.error && <span className="badge warn">{t('interrupted')}</span>}
      {error && <ErrorNotice error={error} onRetry={retry} />}
      {message.status === 'done' && message.finishReason === 'length' && (
        <CutNotice convId={convId} messageId={message.id} canContinue={isLast && !busy} />
      )}
      {!streaming && (
        <footer className="msg-meta">
          <div className="msg-actions">
            {answer && <CopyButton text={answer} label={t('copyMessage')} />}
            {/* After an error the notice's Retry does it, on the last answer. */}
            {again && (!error || !isLast) && (
              <IconButton
                label={t('regenerate')}
                small
                onClick={again}
              >
                <RefreshIcon />
              </IconButton>
            )}
            {/* An answer cut short (a dropped connection, a closed page, Stop) can be carried on, wherever it is. */}
            {!busy && answer && (message.status === 'interrupted' || message.status === 'stopped') && (
              <button
                type="button"
                className="btn small"
                onClick={() => void continueAnswer(convId, message.id, t('continuePrompt'))}
              >
                {t('continue')}
              </button>
            )}
            <BranchSwitch convId={convId} messageId={message.id} version={version} versions={versions} busy={busy} />
          </div>
          <span className="metrics">
            <MessageTime at={message.createdAt} />
            {message.metrics && metricsText(message.metrics, t).map((part) => <span key={part}>{part}</span>)}
          </span>
        </footer>
      )}
    </article>
  )
}
