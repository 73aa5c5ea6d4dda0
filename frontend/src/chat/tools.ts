import type { MessageKey } from '../i18n'
import type { ToolDefinition } from '../types'

/** What is wrong with a tools list, as a message key and its values (the dialog translates it). */
export interface ToolsError {
  key: MessageKey
  vars?: Record<string, string | number>
}

// OpenAI's rule for function names.
const NAME = /^[A-Za-z0-9_-]{1,64}$/

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Why `value` is not a list of OpenAI function tools; null when it is one. */
export function toolsError(value: unknown): ToolsError | null {
  if (!Array.isArray(value)) return { key: 'toolsNotArray' }
  const seen = new Set<string>()
  for (const [i, tool] of value.entries()) {
    const n = i + 1
    if (!isObj(tool) || tool.type !== 'function' || !isObj(tool.function)) return { key: 'toolsBadItem', vars: { n } }
    const { name, parameters } = tool.function
    if (typeof name !== 'string' || !NAME.test(name)) return { key: 'toolsBadName', vars: { n } }
    if (parameters !== undefined && !isObj(parameters)) return { key: 'toolsBadParameters', vars: { n } }
    if (seen.has(name)) return { key: 'toolsDuplicate', vars: { name } }
    seen.add(name)
  }
  return null
}

/** The chat settings' Tools field: empty is no tools; otherwise a JSON array of tool definitions. */
export function parseTools(text: string): { tools: ToolDefinition[] } | { error: ToolsError } {
  if (!text.trim()) return { tools: [] }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { error: { key: 'toolsNotJson', vars: { reason: e instanceof Error ? e.message : String(e) } } }
  }
  const error = toolsError(value)
  return error ? { error } : { tools: value as ToolDefinition[] }
}

/** How the Tools field shows a chat's tools. */
export function toolsText(tools: ToolDefinition[] | undefined): string {
  return tools?.length ? JSON.stringify(tools, null, 2) : ''
}
