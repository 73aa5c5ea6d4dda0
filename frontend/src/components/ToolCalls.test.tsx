// @vitest-environment happy-dom
import { act } from 'react'
import { beforeEach, describe, expect, it } from 'vitest'
import { settingsStore } from '../store/settings'
import type { ToolCall } from '../types'
import { ToolCalls } from './ToolCalls'
import { mountPoint } from '../testing/mount'

const mount = mountPoint()

const call = (args: string, id = 'call_1'): ToolCall => ({ id, type: 'function', function: { name: 'get_weather', arguments: args } })
const render = (calls: ToolCall[]) => mount.render(<ToolCalls calls={calls} />)
const blocks = () => [...mount.container.querySelectorAll('details')]

describe('ToolCalls', () => {
  beforeEach(() => {
    settingsStore.getState().update({ language: 'en' })
  })

  it('one collapsed block per call, named in its summary, in a labelled group', () => {
    render([call('{}'), call('{"city": "Rome"}', 'call_2')])
    expect(mount.container.querySelector('[role="group"]')?.getAttribute('aria-label')).toBe('Tool calls')
    expect(blocks().map((d) => d.querySelector('summary')?.textContent)).toEqual(['Tool call get_weather', 'Tool call get_weather'])
    expect(blocks().every((d) => !d.open)).toBe(true)
  })

  it('shows arguments as written while they stream, indented once they are JSON, and stays open meanwhile', () => {
    render([call('{"city": "Pa')])
    const [block] = blocks()
    expect(block?.querySelector('pre')?.textContent).toBe('{"city": "Pa')
    act(() => {
      if (block) block.open = true
    })
    render([call('{"city": "Paris"}')])
    expect(blocks()[0]).toBe(block)
    expect(block?.open).toBe(true)
    expect(block?.querySelector('pre')?.textContent).toBe('{\n  "city": "Paris"\n}')
  })

  it('speaks Chinese', () => {
    settingsStore.getState().update({ language: 'zh' })
    render([call('{}')])
    expect(mount.container.querySelector('summary')?.textContent).toBe('工具调用 get_weather')
    expect(mount.container.querySelector('small')?.textContent).toBe('聊天页面只显示工具调用，不会执行它们。')
  })
})
