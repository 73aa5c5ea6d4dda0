import { describe, expect, it } from 'vitest'
import { translator } from '../i18n'
import type { ToolDefinition } from '../types'
import { parseTools, toolsText } from './tools'

const weather: ToolDefinition = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: {} } },
}

describe('parseTools', () => {
  it('reads a JSON array of function tools; empty is no tools', () => {
    expect(parseTools(JSON.stringify([weather, { type: 'function', function: { name: 'get-time_2' } }]))).toEqual({
      tools: [weather, { type: 'function', function: { name: 'get-time_2' } }],
    })
    expect(parseTools('  \n')).toEqual({ tools: [] })
    expect(parseTools('[]')).toEqual({ tools: [] })
  })

  it('says what is wrong, naming the tool', () => {
    const err = (text: string) => {
      const r = parseTools(text)
      return 'error' in r ? r.error : null
    }
    expect(err('[{"type": "function",')).toMatchObject({ key: 'toolsNotJson' })
    expect(err(JSON.stringify(weather))).toEqual({ key: 'toolsNotArray' })
    expect(err(JSON.stringify([weather, { type: 'retrieval' }]))).toEqual({ key: 'toolsBadItem', vars: { n: 2 } })
    expect(err(JSON.stringify([{ type: 'function', function: [] }]))).toEqual({ key: 'toolsBadItem', vars: { n: 1 } })
    expect(err(JSON.stringify([{ type: 'function', function: { name: 'get weather' } }]))).toEqual({
      key: 'toolsBadName',
      vars: { n: 1 },
    })
    expect(err(JSON.stringify([{ type: 'function', function: { name: 'f', parameters: [] } }]))).toEqual({
      key: 'toolsBadParameters',
      vars: { n: 1 },
    })
    expect(err(JSON.stringify([weather, weather]))).toEqual({ key: 'toolsDuplicate', vars: { name: 'get_weather' } })
  })

  it('has a message in both languages for every error', () => {
    const e = parseTools('[{"type": "function", "function": {"name": "a b"}}]')
    expect('error' in e && translator('en')(e.error.key, e.error.vars)).toBe(
      'Tool #1: function.name must be 1–64 letters, digits, _ or -',
    )
    expect('error' in e && translator('zh')(e.error.key, e.error.vars)).toContain('第 1 个工具')
  })
})

describe('toolsText', () => {
  it('shows saved tools as indented JSON that reads back the same', () => {
    expect(toolsText(undefined)).toBe('')
    expect(toolsText([])).toBe('')
    const text = toolsText([weather])
    expect(text).toContain('\n  {')
    expect(parseTools(text)).toEqual({ tools: [weather] })
  })
})
