import { describe, expect, it } from 'vitest'
import type { ToolCallDelta } from '../api/client'
import { addToolCallDelta, assistantTurn, NO_TOOL_RESULT, prettyArguments, toolCallList, type PendingCalls } from './toolCalls'

const call = (id: string, name: string, args: string) => ({ id, type: 'function' as const, function: { name, arguments: args } })

describe('addToolCallDelta', () => {
  it('puts interleaved calls together by index, in index order', () => {
    // As OpenAI streams two parallel calls: id, type and name first, then argument fragments.
    const pieces: ToolCallDelta[] = [
      { index: 1, id: 'call_b', type: 'function', function: { name: 'add', arguments: '' } },
      { index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } },
      { index: 0, function: { arguments: '{"city": "Pa' } },
      { index: 1, function: { arguments: '{"a": 1, ' } },
      { index: 0, function: { arguments: 'ris"}' } },
      { index: 1, function: { arguments: '"b": 2}' } },
    ]
    const pending: PendingCalls = new Map()
    const seen: string[][] = []
    for (const piece of pieces) {
      addToolCallDelta(pending, piece)
      seen.push(toolCallList(pending).map((c) => c.function.arguments))
    }
    expect(toolCallList(pending)).toEqual([
      call('call_a', 'get_weather', '{"city": "Paris"}'),
      call('call_b', 'add', '{"a": 1, "b": 2}'),
    ])
    // Every step shows what has arrived so far (streaming view).
    expect(seen[2]).toEqual(['{"city": "Pa', ''])
  })

  it('keeps the first id, joins a name sent in pieces, and ignores a piece without a valid index', () => {
    const pending: PendingCalls = new Map()
    addToolCallDelta(pending, { index: 0, id: 'call_1', function: { name: 'get_' } })
    addToolCallDelta(pending, { index: 0, id: null, function: { name: 'time', arguments: '{}' } })
    addToolCallDelta(pending, { index: -1, function: { arguments: 'x' } })
    addToolCallDelta(pending, { index: 0.5, function: { arguments: 'x' } })
    expect(toolCallList(pending)).toEqual([call('call_1', 'get_time', '{}')])
  })

  it('gives a new list and new call objects, so a view that compares by reference redraws', () => {
    const pending: PendingCalls = new Map()
    addToolCallDelta(pending, { index: 0, id: 'c', function: { name: 'f', arguments: '' } })
    const before = toolCallList(pending)
    addToolCallDelta(pending, { index: 0, function: { arguments: '{' } })
    const after = toolCallList(pending)
    expect(after).not.toBe(before)
    expect(after[0]).not.toBe(before[0])
    expect(before[0]?.function.arguments).toBe('')
  })
})

describe('prettyArguments', () => {
  it('indents JSON, and shows anything else as written', () => {
    expect(prettyArguments('{"city":"Paris","days":[1,2]}')).toBe('{\n  "city": "Paris",\n  "days": [\n    1,\n    2\n  ]\n}')
    expect(prettyArguments('{"city": "Pa')).toBe('{"city": "Pa')
    expect(prettyArguments('')).toBe('')
    expect(prettyArguments('{"名": "巴黎"}')).toBe('{\n  "名": "巴黎"\n}')
  })
})

describe('assistantTurn', () => {
  it('sends calls with null content, each answered by a tool message saying it was not run', () => {
    const calls = [call('call_a', 'get_weather', '{"city": "Paris"}'), call('call_b', 'add', '{"a": 1}')]
    expect(assistantTurn('m1', '', calls)).toEqual([
      { role: 'assistant', content: null, tool_calls: calls },
      { role: 'tool', tool_call_id: 'call_a', content: NO_TOOL_RESULT },
      { role: 'tool', tool_call_id: 'call_b', content: NO_TOOL_RESULT },
    ])
  })

  it('keeps text beside the calls, and names calls a server sent without an id', () => {
    const turn = assistantTurn('m1', 'Let me check.', [call('', 'get_time', '{}')])
    expect(turn).toEqual([
      { role: 'assistant', content: 'Let me check.', tool_calls: [call('call_m1_0', 'get_time', '{}')] },
      { role: 'tool', tool_call_id: 'call_m1_0', content: NO_TOOL_RESULT },
    ])
  })

  it('leaves out calls cut off by Stop, and sends nothing for an answer with neither text nor calls', () => {
    const cut = call('call_c', 'get_weather', '{"city": "Pa')
    expect(assistantTurn('m1', 'Hi', [cut])).toEqual([{ role: 'assistant', content: 'Hi' }])
    expect(assistantTurn('m1', '', [cut])).toEqual([])
    expect(assistantTurn('m1', '', [call('call_d', '', '{}')])).toEqual([])
    expect(assistantTurn('m1', '')).toEqual([])
    expect(assistantTurn('m1', 'Hi')).toEqual([{ role: 'assistant', content: 'Hi' }])
  })
})
