import { useId, useState } from 'react'
import { useStore } from 'zustand'
import { saveChatSettings } from '../chat/actions'
import { parseTools, toolsText, type ToolsError } from '../chat/tools'
import { useT } from '../i18n'
import { chatStore } from '../store/conversations'
import { settingsStore } from '../store/settings'
import { uiStore, type ChatDraft } from '../store/ui'
import type { GenParams, ToolChoice } from '../types'
import { Dialog } from '../ui/Dialog'
import { Form } from '../ui/Form'
import { PresetPicker } from './PresetPicker'

export function ChatSettingsDialog() {
  const t = useT()
  const open = useStore(uiStore, (s) => s.chatSettingsOpen)
  const conv = useStore(chatStore, (s) => (s.activeId ? s.conversations[s.activeId] : undefined))
  const draft = useStore(uiStore, (s) => s.draft)
  const defaultParams = useStore(settingsStore, (s) => s.defaultParams)
  const close = () => uiStore.setState({ chatSettingsOpen: false })
  // On the welcome screen there is no conversation yet: the settings wait for its first message.
  const current = conv ?? draft ?? { systemPrompt: '', params: defaultParams }
  return (
    <Dialog open={open} title={t('chatSettings')} onClose={close}>
      {open && <ChatSettingsForm key={conv?.id ?? ''} convId={conv?.id ?? null} conv={current} onDone={close} />}
    </Dialog>
  )
}

function ChatSettingsForm({ convId, conv, onDone }: { convId: string | null; conv: ChatDraft; onDone: () => void }) {
  const t = useT()
  const [systemPrompt, setSystemPrompt] = useState(conv.systemPrompt)
  const [temperature, setTemperature] = useState(String(conv.params.temperature))
  const [topP, setTopP] = useState(String(conv.params.top_p))
  const [maxTokens, setMaxTokens] = useState(String(conv.params.max_tokens))
  const [seed, setSeed] = useState(conv.params.seed === null ? '' : String(conv.params.seed))
  const [asDefault, setAsDefault] = useState(false)
  const [tools, setTools] = useState(toolsText(conv.tools))
  const [toolChoice, setToolChoice] = useState<ToolChoice>(conv.toolChoice ?? 'auto')
  const [toolsErr, setToolsErr] = useState<ToolsError | null>(null)
  const toolsErrId = useId()
  const [advanced, setAdvanced] = useState(!!conv.tools?.length)

  const submit = () => {
    const parsed = parseTools(tools)
    if ('error' in parsed) {
      setAdvanced(true)
      setToolsErr(parsed.error)
      return
    }
    const params: GenParams = {
      temperature: Number(temperature),
      top_p: Number(topP),
      max_tokens: Math.round(Number(maxTokens)),
      seed: seed.trim() === '' ? null : Math.round(Number(seed)),
    }
    saveChatSettings(convId, { systemPrompt, params, tools: parsed.tools, toolChoice }, asDefault)
    onDone()
  }

  return (
    <Form onSubmit={submit} onCancel={onDone}>
      <PresetPicker prompt={systemPrompt} onPick={setSystemPrompt}>
        <label className="field">
          <span>{t('systemPrompt')}</span>
          <textarea rows={4} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
          <small>{t('systemPromptHint')}</small>
        </label>
      </PresetPicker>
      <div className="grid-2">
        <label className="field">
          <span>{t('temperature')}</span>
          <input
            type="number"
            min={0}
            max={2}
            step={0.05}
            required
            value={temperature}
            onChange={(e) => setTemperature(e.target.value)}
          />
        </label>
        <label className="field">
          <span>{t('topP')}</span>
          <input
            type="number"
            min={0.01}
            max={1}
            step={0.01}
            required
            value={topP}
            onChange={(e) => setTopP(e.target.value)}
          />
        </label>
        <label className="field">
          <span>{t('maxTokens')}</span>
          <input
            type="number"
            min={1}
            step={1}
            required
            value={maxTokens}
            onChange={(e) => setMaxTokens(e.target.value)}
          />
        </label>
        <label className="field">
          <span>{t('seed')}</span>
          <input
            type="number"
            step={1}
            min={0}
            placeholder={t('seedHint')}
            value={seed}
            onChange={(e) => setSeed(e.target.value)}
          />
        </label>
      </div>
      <label className="check">
        <input type="checkbox" checked={asDefault} onChange={(e) => setAsDefault(e.target.checked)} />
        <span>{t('saveAsDefault')}</span>
      </label>
      {/* Raw JSON for those who know what it is: closed unless this chat has tools. */}
      <details className="advanced" open={advanced} onToggle={(e) => setAdvanced(e.currentTarget.open)}>
        <summary>{t('advanced')}</summary>
        <label className="field">
          <span>{t('tools')}</span>
          <textarea
            rows={4}
            className="mono"
            spellCheck={false}
            value={tools}
            aria-invalid={toolsErr !== null}
            aria-describedby={toolsErr ? toolsErrId : undefined}
            placeholder='[{"type": "function", "function": {"name": "get_weather", "parameters": {…}}}]'
            onChange={(e) => {
              setTools(e.target.value)
              setToolsErr(null)
            }}
          />
          {toolsErr ? (
            <small id={toolsErrId} className="field-error" role="alert">
              {t(toolsErr.key, toolsErr.vars)}
            </small>
          ) : (
            <small>{t('toolsHint')}</small>
          )}
        </label>
        <label className="field">
          <span>{t('toolChoice')}</span>
          <select value={toolChoice} onChange={(e) => setToolChoice(e.target.value as ToolChoice)}>
            <option value="auto">{t('toolChoiceAuto')}</option>
            <option value="required">{t('toolChoiceRequired')}</option>
            <option value="none">{t('toolChoiceNone')}</option>
          </select>
        </label>
      </details>
    </Form>
  )
}
