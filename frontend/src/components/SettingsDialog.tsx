import { useState } from 'react'
import { useStore } from 'zustand'
import { useT } from '../i18n'
import { probeServer } from '../store/models'
import { settingsStore, type LanguagePref, type ThemePref } from '../store/settings'
import { uiStore } from '../store/ui'
import { Dialog } from '../ui/Dialog'
import { Form } from '../ui/Form'
import { EmbeddingModelPicker } from './EmbeddingModelPicker'
import { PromptLibrary } from './PromptLibrary'

export function SettingsDialog() {
  const t = useT()
  const open = useStore(uiStore, (s) => s.settingsOpen)
  const close = () => uiStore.setState({ settingsOpen: false })
  return (
    <Dialog open={open} title={t('settings')} onClose={close}>
      <SettingsForm onDone={close} />
    </Dialog>
  )
}

/** Mounted only while the dialog is open, so it starts from the saved settings each time. */
function SettingsForm({ onDone }: { onDone: () => void }) {
  const t = useT()
  const saved = settingsStore.getState()
  const [apiBaseUrl, setApiBaseUrl] = useState(saved.apiBaseUrl)
  const [apiKey, setApiKey] = useState(saved.apiKey)
  const [language, setLanguage] = useState<LanguagePref>(saved.language)
  const [theme, setTheme] = useState<ThemePref>(saved.theme)
  const [probe, setProbe] = useState<{ ok: boolean; text: string } | null>(null)

  const test = async () => {
    setProbe(null)
    const result = await probeServer({ baseUrl: apiBaseUrl, apiKey })
    if ('count' in result) {
      setProbe({ ok: true, text: t('connectionOk', { n: result.count }) })
      return
    }
    const { kind, message } = result.error
    // A web page where the API should be: say what to change, not which content type came back.
    setProbe({ ok: false, text: kind === 'not_api' ? t('errNotApiHelp', { url: apiBaseUrl }) : message })
  }

  const submit = () => {
    settingsStore.getState().update({ apiBaseUrl: apiBaseUrl.trim(), apiKey: apiKey.trim(), language, theme })
    onDone()
  }

  return (
    <Form onSubmit={submit} onCancel={onDone}>
      <fieldset>
        <legend>{t('connection')}</legend>
        <label className="field">
          <span>{t('apiBaseUrl')}</span>
          <input
            type="text"
            inputMode="url"
            value={apiBaseUrl}
            placeholder="/v1"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setApiBaseUrl(e.target.value)}
          />
          <small>{t('apiBaseUrlHint')}</small>
        </label>
        <label className="field">
          <span>{t('apiKey')}</span>
          <input
            type="password"
            value={apiKey}
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setApiKey(e.target.value)}
          />
          <small>{t('apiKeyHint')}</small>
        </label>
        <div className="row">
          <button type="button" className="btn" onClick={() => void test()}>
            {t('testConnection')}
          </button>
          {probe && (
            <span role="status" className={probe.ok ? 'ok-text' : 'error-text'}>
              {probe.text}
            </span>
          )}
        </div>
      </fieldset>
      <fieldset>
        <legend>{t('appearance')}</legend>
        <label className="field">
          <span>{t('language')}</span>
          <select value={language} onChange={(e) => setLanguage(e.target.value as LanguagePref)}>
            <option value="auto">{t('languageAuto')}</option>
            <option value="en">English</option>
            <option value="zh">简体中文</option>
          </select>
        </label>
        <label className="field">
          <span>{t('theme')}</span>
          <select value={theme} onChange={(e) => setTheme(e.target.value as ThemePref)}>
            <option value="system">{t('themeSystem')}</option>
            <option value="light">{t('themeLight')}</option>
            <option value="dark">{t('themeDark')}</option>
          </select>
        </label>
      </fieldset>
      <EmbeddingModelPicker />
      <PromptLibrary />
    </Form>
  )
}
