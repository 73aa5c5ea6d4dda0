import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react'
import { useStore } from 'zustand'
import { sendMessage } from '../chat/actions'
import { comparedColumns, compareStore, sendCompared } from '../chat/compare'
import { isGenerating, stop } from '../chat/generate'
import { enterSends, isSendKey } from '../chat/keys'
import { acceptsImages, modelLabel, modelSize, resolveEmbeddingModel, resolveModel } from '../chat/model'
import { useT } from '../i18n'
import { answerElsewhere } from '../store/answerLock'
import { chatStore } from '../store/conversations'
import { modelsStore, refreshModels } from '../store/models'
import { settingsStore } from '../store/settings'
import { activePath, versionsOnPath } from '../store/branches'
import { isPhoneWidth, uiStore } from '../store/ui'
import type { Attachment, Conversation, Message, Variant } from '../types'
import { AttachButton, AttachmentChips } from './Attachments'
import { ErrorNotice } from './ErrorNotice'
import { useAttachments } from './useAttachments'
import { pastedFiles, useFileDrop } from './useFileDrop'
import { useVoiceInput } from './useVoiceInput'
import { VoiceButton } from './VoiceButton'
import { ArrowDownIcon, ColumnsIcon, MenuIcon, PaperclipIcon, SendIcon, SlidersIcon, StopIcon } from '../ui/icons'
import { CompareColumns, CompareDialog } from './Compare'
import { MessageView } from './MessageView'
import { ModelDetailsButton, ModelLoadStatus } from './ModelInfo'
import { usePromptMenu } from './PromptMenu'
import { IconButton } from '../ui/IconButton'
import './ChatView.css'

export function ChatView() {
  const conv = useStore(chatStore, (s) => (s.activeId ? s.conversations[s.activeId] : undefined))
  const busy = isGenerating(conv)
  // The branch shown; the others are a ‹ 2/3 › away.
  const path = useMemo(() => (conv ? activePath(conv) : []), [conv])
  return (
    <main className="main">
      <Header conv={conv} />
      <ModelLoadState conv={conv} />
      <EmbeddingModelState />
      {/* An answer already showing the same trouble inline says enough. */}
      {!path.at(-1)?.error && <ConnectionProblem />}
      {/* Keyed: another conversation starts from fresh message views (ids repeat across imports). */}
      {conv && conv.messages.length > 0 ? <MessageList key={conv.id} conv={conv} path={path} busy={busy} /> : <Welcome />}
      <Composer conv={conv} busy={busy} />
    </main>
  )
}

/** The listed models, and the one this conversation (or a new one) will use. */
function useChosenModel(conv: Conversation | undefined) {
  const models = useStore(modelsStore, (s) => s.models)
  const lastModel = useStore(settingsStore, (s) => s.lastModel)
  return { models, selected: resolveModel([conv?.model ?? '', lastModel], models) }
}

function Header({ conv }: { conv: Conversation | undefined }) {
  const t = useT()
  const { models, selected } = useChosenModel(conv)
  // Before the list has loaded (or when it cannot), the model that will be tried is still shown.
  const options = models.length === 0 && selected ? [{ id: selected }] : models

  useEffect(() => {
    document.title = conv?.title ? `${conv.title} · ${t('appName')}` : t('appName')
  }, [conv?.title, t])

  const chooseModel = (id: string) => {
    if (conv) chatStore.getState().patch(conv.id, { model: id })
    settingsStore.getState().update({ lastModel: id })
  }
  const openChatSettings = () => uiStore.setState({ chatSettingsOpen: true })

  return (
    <header className="topbar">
      <IconButton
        label={t('toggleSidebar')}
        onClick={() => uiStore.setState((s) => ({ sidebarOpen: !s.sidebarOpen }))}
      >
        <MenuIcon />
      </IconButton>
      <h1 className="conv-heading" title={conv?.title}>
        {conv?.title || t('untitled')}
      </h1>
      <select
        className="model-select"
        aria-label={t('model')}
        value={selected}
        disabled={options.length === 0}
        onChange={(e) => chooseModel(e.target.value)}
      >
        {options.length === 0 && <option value="">{t('noModels')}</option>}
        {options.map((m) => (
          <option key={m.id} value={m.id}>
            {modelLabel(m, t)}
          </option>
        ))}
      </select>
      <ModelDetailsButton model={models.find((m) => m.id === selected)} />
      <IconButton
        label={t('chatSettings')}
        onClick={openChatSettings}
      >
        <SlidersIcon />
      </IconButton>
    </header>
  )
}

/** The chosen model is not in memory: it loads when a message is sent, with the server's progress. */
function ModelLoadState({ conv }: { conv: Conversation | undefined }) {
  const t = useT()
  const { models, selected } = useChosenModel(conv)
  const model = models.find((m) => m.id === selected)
  const size = model?.size_bytes ? modelSize(model.size_bytes) : '?'
  return <ModelLoadStatus model={model} unloaded={t('modelLoadsOnSend', { model: selected, size })} />
}

/**
 * The documents' model (Settings): its load as it goes, when chosen there or when a search waits
 * for it, or a notice that the one chosen is no longer on the server and which one is used instead.
 */
function EmbeddingModelState() {
  const t = useT()
  const listed = useStore(modelsStore, (s) => s.embeddingModels)
  const read = useStore(modelsStore, (s) => s.status === 'ok')
  const chosen = useStore(settingsStore, (s) => s.embeddingModel)
  const { model, gone } = resolveEmbeddingModel(chosen, listed)
  if (gone && read) {
    return (
      <div className="model-load" role="status">
        <span>
          {model ? t('embeddingModelGone', { model: gone, fallback: model.id }) : t('embeddingModelGoneNone', { model: gone })}
        </span>
        <button type="button" className="btn small" onClick={() => uiStore.setState({ settingsOpen: true })}>
          {t('chooseAnother')}
        </button>
      </div>
    )
  }
  return model?.state === 'loading' || model?.state === 'failed' ? <ModelLoadStatus model={model} unloaded="" /> : null
}

/** The model list failed to load: usually the server is down or wants a key. */
function ConnectionProblem() {
  const error = useStore(modelsStore, (s) => (s.status === 'error' ? s.error : null))
  if (!error) return null
  return (
    <div className="banner">
      <ErrorNotice error={error} onRetry={() => void refreshModels().catch(() => undefined)} />
    </div>
  )
}

function Welcome() {
  const t = useT()
  return (
    <div className="welcome">
      <div className="brand-mark big" aria-hidden="true" />
      <h2>{t('welcomeTitle')}</h2>
      <p className="muted">{t('welcomeBody')}</p>
      <div className="suggestions">
        {(['suggestion1', 'suggestion2', 'suggestion3'] as const).map((key) => (
          <button
            key={key}
            type="button"
            className="suggestion"
            onClick={() => void sendMessage(chatStore.getState().activeId, t(key))}
          >
            {t(key)}
          </button>
        ))}
      </div>
    </div>
  )
}

const NEAR_BOTTOM_PX = 80

function MessageList({ conv, path, busy }: { conv: Conversation; path: Message[]; busy: boolean }) {
  const t = useT()
  const scroller = useRef<HTMLDivElement>(null)
  const versions = useMemo(() => versionsOnPath(conv, path), [conv, path])
  // Answers side by side end the branch in columns, in place of its last answer.
  const compared = useStore(compareStore, (s) => s[conv.id])
  const columns = useMemo(() => comparedColumns(conv, path, compared), [conv, path, compared])
  const shown = columns.length ? path.slice(0, -1) : path
  // Follow the answer as it grows unless the reader has scrolled up to read something.
  const follow = useRef(true)
  const [showJump, setShowJump] = useState(false)

  const scrollToEnd = () => {
    const el = scroller.current
    if (el) el.scrollTop = el.scrollHeight
  }

  useLayoutEffect(() => {
    follow.current = true
    scrollToEnd()
  }, [conv.id, conv.messages.length])

  useLayoutEffect(() => {
    if (follow.current) scrollToEnd()
  }, [path])

  return (
    <div
      ref={scroller}
      className="messages"
      onScroll={(e) => {
        const el = e.currentTarget
        follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX
        setShowJump(!follow.current)
      }}
    >
      <div className="messages-inner" role="log" aria-live="off">
        {shown.map((m, i) => (
          <MessageView
            key={m.id}
            convId={conv.id}
            message={m}
            isLast={i === path.length - 1}
            busy={busy}
            version={versions.get(m.id)?.version ?? 1}
            versions={versions.get(m.id)?.versions ?? 1}
          />
        ))}
        {columns.length > 0 && <CompareColumns conv={conv} columns={columns} busy={busy} />}
      </div>
      {showJump && (
        <IconButton
          label={t('jumpToLatest')}
          className="jump"
          onClick={() => {
            follow.current = true
            scrollToEnd()
          }}
        >
          <ArrowDownIcon />
        </IconButton>
      )}
    </div>
  )
}

const MAX_INPUT_HEIGHT = 240

function Composer({ conv, busy }: { conv: Conversation | undefined; busy: boolean }) {
  const t = useT()
  const [text, setText] = useState('')
  const input = useRef<HTMLTextAreaElement>(null)
  const convId = conv?.id ?? null
  const { models, selected } = useChosenModel(conv)
  const files = useAttachments(t, { name: selected, imagesOk: acceptsImages(models.find((m) => m.id === selected)) })
  const { add } = files
  const dropping = useFileDrop(useCallback((list: File[]) => void add(list), [add]))
  const voice = useVoiceInput(text, setText)

  useEffect(() => {
    // On a phone, focusing would pop up the keyboard over the conversation just opened.
    if (!isPhoneWidth()) input.current?.focus()
  }, [convId])

  // Grows with its content up to a limit, then scrolls.
  useLayoutEffect(() => {
    const el = input.current
    if (!el) return
    el.style.height = 'auto'
    el.style.height = `${Math.min(el.scrollHeight, MAX_INPUT_HEIGHT)}px`
  }, [text])

  const refused = useStore(answerElsewhere, (s) => convId !== null && s.convId === convId)
  // Between Enter and the answer starting (a moment): a second Enter sends nothing.
  const sending = useRef(false)
  // `ask`: one answer (Send) or two side by side (Compare).
  const submit = (ask: (text: string, attachments: Attachment[]) => Promise<boolean>) => {
    if (busy || sending.current || !text.trim() || files.reading) return
    sending.current = true
    voice.stop()
    // Kept in the box when another tab is answering here, to send once it has finished.
    void ask(text, files.attachments)
      .then((sent) => {
        if (!sent) return
        setText('')
        files.clear()
      })
      .finally(() => (sending.current = false))
  }
  const send = () => submit((question, attached) => sendMessage(convId, question, attached))
  const [comparing, setComparing] = useState(false)
  const askBoth = (second: Variant) => {
    setComparing(false)
    submit((question, attached) => sendCompared(convId, question, attached, second))
  }

  const prompts = usePromptMenu(text, setText)
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (prompts.onKeyDown(e)) return
    if (isSendKey({ ...e, isComposing: e.nativeEvent.isComposing }, enterSends())) {
      e.preventDefault()
      send()
    }
  }

  return (
    <>
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault()
        send()
      }}
>
      {dropping && (
        <div className="drop-overlay" aria-hidden="true">
          <div className="drop-card">
            <PaperclipIcon />
            <strong>{t('dropTitle')}</strong>
            <span>{t('dropBody')}</span>
          </div>
        </div>
      )}
      <AttachmentChips items={files.attachments} onRemove={files.remove} />
      {files.problems.length > 0 && (
        <ul className="attach-problems" role="alert">
          {files.problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      {refused && (
        <p className="composer-hint busy-elsewhere" role="alert">
          {t('answerElsewhere')}
        </p>
      )}
      {files.reading && (
        <p className="composer-hint" role="status">
          {t('readingFiles')}
        </p>
      )}
      {voice.problem && (
        <p className="composer-hint busy-elsewhere" role="alert">
          {t(voice.problem)}
        </p>
      )}
      <div className="composer-box">
        {prompts.menu}
        <AttachButton onFiles={(list) => void files.add(list)} disabled={busy} />
        <label htmlFor="composer-input" className="visually-hidden">
          {t('messageLabel')}
        </label>
        <textarea
          id="composer-input"
          ref={input}
          rows={1}
          value={text}
          placeholder={t('messagePlaceholder')}
          readOnly={voice.listening}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          {...prompts.inputProps}
          onPaste={(e) => {
            const pasted = pastedFiles(e.clipboardData)
            if (!pasted.length) return
            e.preventDefault()
            void files.add(pasted)
          }}
        />
        <VoiceButton voice={voice} disabled={busy} />
        {busy && convId ? (
          <button
            type="button"
            className="send-btn stop"
            aria-label={t('stop')}
            title={`${t('stop')} (Esc)`}
            onClick={() => stop(convId)}
          >
            <StopIcon />
          </button>
        ) : (
          <>
            <IconButton label={t('compare')} disabled={!text.trim() || files.reading} onClick={() => setComparing(true)}>
              <ColumnsIcon />
            </IconButton>
            <button
              type="submit"
              className="send-btn"
              aria-label={t('send')}
              title={t('send')}
              disabled={!text.trim() || files.reading}
            >
              <SendIcon />
            </button>
          </>
        )}
      </div>
      <p className="composer-hint">{t('composerHint')}</p>
    </form>
    <CompareDialog
      open={comparing}
      conv={conv}
      model={selected}
      models={models}
      onAsk={askBoth}
      onClose={() => setComparing(false)}
    />
    </>
  )
}
