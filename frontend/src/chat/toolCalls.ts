import type { ChatRequestMessage, ToolCallDelta } from '../api/client'
import type { ToolCall } from '../types'

/** The tool message that answers each call: the page shows calls but never runs them. */
export const NO_TOOL_RESULT = 'The chat page does not run tools; no result.'

/** Streamed calls being put together, by their `index` in the stream. */
export type PendingCalls = Map<number, ToolCall>

/** Adds one streamed piece: a new call (id, type, name) or more of an existing call's arguments. */
export function addToolCallDelta(pending: PendingCalls, piece: ToolCallDelta): void {
  if (!Number.isInteger(piece.index) || piece.index < 0) return
  const old = pending.get(piece.index)
  const fn = old?.function ?? { name: '', arguments: '' }
  pending.set(piece.index, {
    id: piece.id || old?.id || '',
    type: 'function',
    function: {
      name: fn.name + (piece.function?.name ?? ''),
      arguments: fn.arguments + (piece.function?.arguments ?? ''),
    },
  })
}

/** The calls in stream order; a new array (and new call objects) so the view sees the change. */
export function toolCallList(pending: PendingCalls): ToolCall[] {
  return [...pending.entries()].sort(([a], [b]) => a - b).map(([, call]) => call)
}

/** Arguments indented as JSON; as written when they are not JSON (still streaming, or stopped). */
export function prettyArguments(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2)
  } catch {
    return args
  }
}

function complete(call: ToolCall): boolean {
  if (!call.function.name) return false
  try {
    JSON.parse(call.function.arguments)
    return true
  } catch {
    return false
  }
}

/**
 * An earlier answer as it goes back to the server. Its complete calls go with it, each followed
 * by a `tool` message saying there is no result, as OpenAI-compatible servers require every call
 * to be answered. A call cut off by Stop (arguments not JSON) is left out: servers refuse it.
 * Nothing at all (no text, no complete call): no messages.
 */
export function assistantTurn(messageId: string, content: string, calls: ToolCall[] = []): ChatRequestMessage[] {
  const sent = calls.filter(complete).map((call, i) => ({ ...call, id: call.id || `call_${messageId}_${i}` }))
  if (!sent.length) return content ? [{ role: 'assistant', content }] : []
  return [
    { role: 'assistant', content: content || null, tool_calls: sent },
    ...sent.map((call): ChatRequestMessage => ({ role: 'tool', tool_call_id: call.id, content: NO_TOOL_RESULT })),
  ]
}
