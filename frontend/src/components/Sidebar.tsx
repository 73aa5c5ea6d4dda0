import { memo, useDeferredValue, useMemo, useRef, useState, type ChangeEvent } from 'react'
import { useStore } from 'zustand'
import { removeConversation } from '../chat/actions'
import { useT, type MessageKey } from '../i18n'
import { exportJson, parseImport } from '../lib/transfer'
import { chatStore, matchesQuery, sortedConversations } from '../store/conversations'
import { closeOnPhone, startNewChat, uiStore } from '../store/ui'
import type { Conversation } from '../types'
import { DownloadIcon, EditIcon, PlusIcon, SearchIcon, SettingsIcon, TrashIcon, UploadIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './Sidebar.css'

const DAY = 24 * 60 * 60 * 1000

function groupOf(updatedAt: number, now: Date): MessageKey {
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime()
  if (updatedAt >= startOfToday) return 'today'
  if (updatedAt >= startOfToday - 7 * DAY) return 'previous7'
  return 'older'
}

export function Sidebar() {
  const t = useT()
  const open = useStore(uiStore, (s) => s.sidebarOpen)
  const conversations = useStore(chatStore, (s) => s.conversations)
  const activeId = useStore(chatStore, (s) => s.activeId)
  const [query, setQuery] = useState('')
  // Typing stays responsive while a long history is filtered.
  const deferredQuery = useDeferredValue(query)
  const [notice, setNotice] = useState('')
  const fileInput = useRef<HTMLInputElement>(null)

  // "Today" is as of page load; good enough for a list that is re-grouped on every reload.
  const [now] = useState(() => new Date())
  const groups = useMemo(() => {
    const out = new Map<MessageKey, Conversation[]>()
    for (const conv of sortedConversations(conversations)) {
      if (!matchesQuery(conv, deferredQuery)) continue
      const key = groupOf(conv.updatedAt, now)
      out.set(key, [...(out.get(key) ?? []), conv])
    }
    return [...out]
  }, [conversations, deferredQuery, now])

  const exportAll = () => {
    const blob = new Blob([exportJson(sortedConversations(chatStore.getState().conversations))], {
      type: 'application/json',
    })
    const a = document.createElement('a')
    a.href = URL.createObjectURL(blob)
    a.download = `localchat-${new Date().toISOString().slice(0, 10)}.json`
    a.click()
    // Revoked after the click has been handled; Firefox reads the URL asynchronously.
    setTimeout(() => URL.revokeObjectURL(a.href), 1000)
  }

  const importFile = async (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0]
    e.target.value = ''
    if (!file) return
    try {
      const list = parseImport(await file.text())
      const n = chatStore.getState().importMany(list)
      setNotice(n < list.length ? t('importedSkipped', { n, skipped: list.length - n }) : t('imported', { n }))
    } catch (err) {
      setNotice(t('importFailed', { reason: err instanceof Error ? err.message : String(err) }))
    }
  }

  return (
    <>
      <aside className={`sidebar${open ? ' open' : ''}`} aria-label={t('appName')}>
        <div className="sidebar-head">
          <span className="brand">
            <span className="brand-mark" aria-hidden="true" />
            {t('appName')}
          </span>
          <button type="button" className="btn new-chat" onClick={startNewChat}>
            <PlusIcon />
            {t('newChat')}
          </button>
        </div>
        <label className="search">
          <SearchIcon />
          <input
            type="search"
            aria-label={t('searchChats')}
            placeholder={t('searchChats')}
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </label>
        <nav className="conv-list" aria-label={t('conversations')}>
          {groups.length === 0 && <p className="muted empty-list">{query ? t('noMatches') : t('noChats')}</p>}
          {groups.map(([key, list]) => (
            <section key={key}>
              <h3>{t(key)}</h3>
              <ul>
                {list.map((conv) => (
                  <ConversationItem key={conv.id} id={conv.id} title={conv.title} active={conv.id === activeId} />
                ))}
              </ul>
            </section>
          ))}
        </nav>
        {notice && (
          <p className="sidebar-notice" role="status">
            {notice}
          </p>
        )}
        <div className="sidebar-foot">
          <button type="button" className="btn ghost" onClick={exportAll}>
            <DownloadIcon />
            {t('exportChats')}
          </button>
          <button type="button" className="btn ghost" onClick={() => fileInput.current?.click()}>
            <UploadIcon />
            {t('importChats')}
          </button>
          <input
            ref={fileInput}
            type="file"
            accept="application/json,.json"
            hidden
            aria-label={t('importChats')}
            onChange={(e) => void importFile(e)}
          />
          <button
            type="button"
            className="btn ghost"
            onClick={() => uiStore.setState({ settingsOpen: true })}
          >
            <SettingsIcon />
            {t('settings')}
          </button>
        </div>
      </aside>
      {open && <div className="scrim" aria-hidden="true" onClick={() => uiStore.setState({ sidebarOpen: false })} />}
    </>
  )
}

const ConversationItem = memo(function ConversationItem({
  id,
  title,
  active,
}: {
  id: string
  title: string
  active: boolean
}) {
  const t = useT()
  const [mode, setMode] = useState<'view' | 'rename' | 'confirm'>('view')
  const label = title || t('untitled')

  if (mode === 'rename') {
    const commit = (value: string) => {
      chatStore.getState().rename(id, value)
      setMode('view')
    }
    return (
      <li className="conv-item editing">
        <input
          aria-label={t('renameChat')}
          defaultValue={title}
          autoFocus
          onFocus={(e) => e.target.select()}
          onKeyDown={(e) => {
            if (e.key === 'Enter') commit(e.currentTarget.value)
            if (e.key === 'Escape') {
              e.stopPropagation()
              setMode('view')
            }
          }}
          onBlur={(e) => commit(e.target.value)}
        />
      </li>
    )
  }

  if (mode === 'confirm') {
    return (
      <li className="conv-item confirming">
        <span>{t('deleteConfirm')}</span>
        <div className="row">
          <button type="button" className="btn danger small" onClick={() => removeConversation(id)}>
            {t('delete')}
          </button>
          <button type="button" className="btn small" autoFocus onClick={() => setMode('view')}>
            {t('cancel')}
          </button>
        </div>
      </li>
    )
  }

  return (
    <li className={`conv-item${active ? ' active' : ''}`}>
      <button
        type="button"
        className="conv-title"
        aria-current={active ? 'page' : undefined}
        title={label}
        onClick={() => {
          chatStore.getState().select(id)
          closeOnPhone()
        }}
      >
        {label}
      </button>
      <div className="conv-actions">
        <IconButton
          label={`${t('rename')}: ${label}`}
          small
          onClick={() => setMode('rename')}
        >
          <EditIcon />
        </IconButton>
        <IconButton
          label={`${t('delete')}: ${label}`}
          small
          onClick={() => setMode('confirm')}
        >
          <TrashIcon />
        </IconButton>
      </div>
    </li>
  )
})
