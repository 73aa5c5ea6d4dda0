import { memo } from 'react'
import { prettyArguments } from '../chat/toolCalls'
import { useT } from '../i18n'
import type { ToolCall } from '../types'
import './ToolCalls.css'

/**
 * The functions an answer called, one collapsed block each: the name in the summary, the
 * arguments (indented JSON, or as written while they stream) inside. Native <details>, so
 * the reader's open/closed choice survives every re-render while the answer streams.
 */
export const ToolCalls = memo(function ToolCalls({ calls }: { calls: ToolCall[] }) {
  const t = useT()
  return (
    <div className="tool-calls" role="group" aria-label={t('toolCalls')}>
      {calls.map((call, i) => (
        <details key={call.id || i} className="tool-call">
          <summary>
            <span className="tool-call-label">{t('toolCall')}</span> <code>{call.function.name}</code>
          </summary>
          <pre className="tool-call-args">
            <code>{prettyArguments(call.function.arguments)}</code>
          </pre>
          <small>{t('toolNotRun')}</small>
        </details>
      ))}
    </div>
  )
})
