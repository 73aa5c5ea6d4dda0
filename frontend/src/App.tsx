import { useEffect } from 'react'
import { useStore } from 'zustand'
import { AccountDialog } from './components/AccountDialog'
import { AccountMenu } from './components/AccountMenu'
import { AdminDialog } from './components/AdminDialog'
import { Announcer } from './components/Announcer'
import { ChatSettingsDialog } from './components/ChatSettingsDialog'
import { ChatView } from './components/ChatView'
import { SettingsDialog } from './components/SettingsDialog'
import { NotSignedIn, SignIn } from './components/SignIn'
import { ShortcutsDialog } from './components/Shortcuts'
import { useShortcuts } from './components/useShortcuts'
import { UndoToast } from './components/UndoToast'
import { Sidebar } from './components/Sidebar'
import { useLanguage, useT } from './i18n'
import { accountStore } from './store/account'
import { chatStore } from './store/conversations'
import { settingsStore } from './store/settings'
import './App.css'

export function App() {
  const loaded = useStore(chatStore, (s) => s.loaded)
  const accountReady = useStore(accountStore, (s) => s.ready)
  const signedOut = useStore(accountStore, (s) => (s.user ? null : s.auth))
  const theme = useStore(settingsStore, (s) => s.theme)
  const lang = useLanguage()
  const t = useT()

  useEffect(() => {
    // "system" leaves the choice to prefers-color-scheme in the stylesheet.
    if (theme === 'system') delete document.documentElement.dataset.theme
    else document.documentElement.dataset.theme = theme
  }, [theme])

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  }, [lang])

  // Esc stops the answer from anywhere on the page; the other shortcuts are listed under `?`.
  useShortcuts()

  // Until the server says whether one signs in here, nothing shows (no flash of the chat).
  if (!loaded || !accountReady) return null
  if (signedOut === 'password') return <SignIn />
  if (signedOut === 'header') return <NotSignedIn />
  return (
    <div className="app">
      <a
        className="skip-link"
        href="#composer-input"
        onClick={(e) => {
          e.preventDefault()
          document.getElementById('composer-input')?.focus()
        }}
      >
        {t('skipToComposer')}
      </a>
      <Sidebar account={<AccountMenu />} />
      <ChatView />
      <SettingsDialog />
      <ChatSettingsDialog />
      <ShortcutsDialog />
      <AdminDialog />
      <AccountDialog />
      <Announcer />
      <UndoToast />
    </div>
  )
}
