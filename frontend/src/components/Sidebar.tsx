import { memo, useDeferredValue, useMemo, useRef, useState, type ChangeEvent, type FocusEvent, type ReactNode } from 'react'
import { useStore } from 'zustand'
import { removeConversation } from '../chat/actions'
import { useLanguage, useT } from '../i18n'
import { conversationHtml, conversationMarkdown, download, fileName } from '../lib/share'
import { exportJson, parseImport } from '../lib/transfer'
import { chatStore, folderNames, sidebarGroups, sortedConversations } from '../store/conversations'
import { closeOnPhone, offerUndo, startNewChat, uiStore } from '../store/ui'
import type { Conversation } from '../types'
import { DownloadIcon, EditIcon, MoreIcon, PlusIcon, SearchIcon, SettingsIcon, TrashIcon, UploadIcon } from '../ui/icons'
import { IconButton } from '../ui/IconButton'
import './Sidebar.css'

const FOLDERS_LIST = 'sidebar-folders'

/** `account`: who is signed in, above the footer (App passes it; nothing with AUTH=none). */
export function Sidebar({ account }: { account?: ReactNode }) {
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
  const [showArchived, setShowArchived] = useState(false)
  const groups = useMemo(
    () => sidebarGroups(conversations, deferredQuery, now, showArchived),
    [conversations, deferredQuery, now, showArchived],
  )
  const archivedCount = useMemo(() => Object.values(conversations).filter((c) => c.archived).length, [conversations])
  const folders = useMemo(() => folderNames(conversations), [conversations])

  const exportAll = () =>
    download(
      `localchat-${new Date().toISOString().slice(0, 10)}.json`,
      exportJson(sortedConversations(chatStore.getState().conversations)),
      'application/json',
    )

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
          {groups.map(({ key, heading, list }) => (
            <section key={key}>
              <h3>{'label' in heading ? t(heading.label) : heading.folder}</h3>
              <ul>
                {list.map((conv) => (
                  <ConversationItem
                    key={conv.id}
                    id={conv.id}
                    title={conv.title}
                    active={conv.id === activeId}
                    pinned={!!conv.pinned}
                    archived={!!conv.archived}
                    folder={conv.folder ?? ''}
                  />
                ))}
              </ul>
            </section>
          ))}
          {archivedCount > 0 && !deferredQuery.trim() && (
            <button type="button" className="btn ghost small show-archived" onClick={() => setShowArchived((v) => !v)}>
              {showArchived ? t('hideArchived') : t('showArchived', { n: archivedCount })}
            </button>
          )}
          <datalist id={FOLDERS_LIST}>
            {folders.map((f) => (
              <option key={f} value={f} />
            ))}
          </datalist>
        </nav>
        {notice && (
          <p className="sidebar-notice" role="status">
            {notice}
          </p>
        )}
        {account}
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
  pinned,
  archived,
  folder,
}: {
  id: string
  title: string
  active: boolean
  pinned: boolean
  archived: boolean
  folder: string
}) {
  const t = useT()
  const lang = useLanguage()
  const [mode, setMode] = useState<'view' | 'rename' | 'folder'>('view')
  const [menuOpen, setMenuOpen] = useState(false)
  const label = title || t('untitled')
  const patch = (p: Partial<Pick<Conversation, 'pinned' | 'archived' | 'folder'>>) => chatStore.getState().patch(id, p)

  if (mode !== 'view') {
    const commit = (value: string) => {
      if (mode === 'rename') chatStore.getState().rename(id, value)
      else patch({ folder: value.trim() || undefined })
      setMode('view')
    }
    return (
      <li className="conv-item editing">
        <input
          aria-label={mode === 'rename' ? t('renameChat') : t('folderName', { title: label })}
          defaultValue={mode === 'rename' ? title : folder}
          placeholder={mode === 'folder' ? t('folderPlaceholder') : undefined}
          list={mode === 'folder' ? FOLDERS_LIST : undefined}
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

  const remove = () => {
    const conv = removeConversation(id)
    if (conv) offerUndo(t('deletedToast', { title: label }), () => chatStore.getState().restore(conv))
  }
  const toggleArchived = () => {
    patch({ archived: !archived })
    if (!archived) offerUndo(t('archivedToast', { title: label }), () => patch({ archived: false }))
  }
  const share = (format: 'md' | 'html') => {
    const conv = chatStore.getState().conversations[id]
    if (!conv) return
    const words = { you: t('you'), assistant: t('assistant'), untitled: t('untitled') }
    if (format === 'md') download(fileName(label, 'md'), conversationMarkdown(conv, words), 'text/markdown')
    else download(fileName(label, 'html'), conversationHtml(conv, words, lang === 'zh' ? 'zh-CN' : 'en'), 'text/html')
  }
  const act = (fn: () => void) => () => {
    setMenuOpen(false)
    fn()
  }
  // The menu closes when focus leaves it (a click elsewhere, Tab away) or on Esc.
  const closeOnLeave = (e: FocusEvent<HTMLDivElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget)) setMenuOpen(false)
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
      <div
        className="conv-actions"
        onBlur={closeOnLeave}
        onKeyDown={(e) => {
          if (e.key === 'Escape' && menuOpen) {
            e.stopPropagation()
            setMenuOpen(false)
          }
        }}
      >
        <IconButton label={`${t('rename')}: ${label}`} small onClick={() => setMode('rename')}>
          <EditIcon />
        </IconButton>
        <IconButton label={`${t('delete')}: ${label}`} small onClick={remove}>
          <TrashIcon />
        </IconButton>
        <IconButton
          label={`${t('moreActions')}: ${label}`}
          small
          aria-expanded={menuOpen}
          aria-haspopup="true"
          onClick={() => setMenuOpen((v) => !v)}
        >
          <MoreIcon />
        </IconButton>
        {menuOpen && (
          <div className="conv-menu">
            <button type="button" className="btn ghost small" autoFocus onClick={act(() => patch({ pinned: !pinned }))}>
              {pinned ? t('unpin') : t('pin')}
            </button>
            <button type="button" className="btn ghost small" onClick={act(() => setMode('folder'))}>
              {t('moveToFolder')}
            </button>
            <button type="button" className="btn ghost small" onClick={act(toggleArchived)}>
              {archived ? t('unarchive') : t('archive')}
            </button>
            <button type="button" className="btn ghost small" onClick={act(() => share('md'))}>
              {t('downloadMarkdown')}
            </button>
            <button type="button" className="btn ghost small" onClick={act(() => share('html'))}>
              {t('downloadHtml')}
            </button>
          </div>
        )}
      </div>
    </li>
  )
})
