import type { Locator, Page } from '@playwright/test'
import { expect, extendChatRequests, isChatPost, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'

/** The weather tool of backend/tests/test_api_tools.py: a short city keeps the call small. */
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 30 }, unit: { enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
]

const calls = (answer: Locator) => answer.locator('details.tool-call')

async function setTools(page: Page, tools: string, choice: string): Promise<void> {
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' })
  // Room for the whole call: a call cut by the length limit is not one.
  await dialog.getByLabel('Max tokens').fill('120')
  // The raw JSON sits under a disclosure, closed while the chat has no tools.
  await dialog.getByText('Advanced', { exact: true }).click()
  const field = dialog.getByRole('textbox', { name: 'Tools' })
  // Not an array: refused with a message that says what to write, and the dialog stays open.
  await field.fill(JSON.stringify(TOOLS[0]))
  await dialog.getByRole('button', { name: 'Save' }).click()
  await expect(dialog.getByRole('alert')).toHaveText(
    'Tools must be a JSON array: [{"type": "function", "function": {"name": "…"}}]',
  )
  await expect(field).toHaveAttribute('aria-invalid', 'true')
  await shot(page, 'tools-settings-error')
  await field.fill(tools)
  await expect(dialog.getByRole('alert')).toBeHidden()
  await dialog.getByRole('combobox', { name: 'Tool choice' }).selectOption(choice)
  await dialog.getByRole('button', { name: 'Save' }).click()
  await expect(dialog).toBeHidden()
}

/** Checks one collapsed call block: its name shows, its arguments (indented JSON) once opened. */
async function expectCall(answer: Locator, name: RegExp | string): Promise<Record<string, unknown>> {
  const call = calls(answer).first()
  await expect(call.locator('summary')).toContainText(name)
  await expect(call).not.toHaveAttribute('open')
  await expect(call.locator('pre')).toBeHidden()
  await call.locator('summary').click()
  await expect(call).toHaveAttribute('open')
  const args = call.locator('pre')
  await expect(args).toBeVisible()
  const text = await args.innerText()
  // Pretty-printed: one field a line.
  expect(text).toContain('\n  "')
  return JSON.parse(text) as Record<string, unknown>
}

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } }

async function shootAll(page: Page, lang: 'en' | 'zh'): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.emulateMedia({ colorScheme: scheme })
      await page.setViewportSize(viewport)
      await expect(calls(lastAnswer(page)).first().locator('pre')).toBeVisible()
      await shot(page, `tools-${lang}-${scheme}-${size}`)
    }
  }
}

test('with Tools and tool choice "required", the answer shows its call, collapsed; reload keeps it', async ({ page }) => {
  // One call per answer: with parallel calls allowed, "required" lets the small model call again
  // and again until the length limit. The page has no control for it.
  await extendChatRequests(page, { parallel_tool_calls: false })
  await page.goto('/')
  await setTools(page, JSON.stringify(TOOLS, null, 2), 'required')

  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, "What's the weather in Paris?")
  expect((await request).postDataJSON()).toMatchObject({ tools: TOOLS, tool_choice: 'required', max_tokens: 120 })
  const answer = lastAnswer(page)
  await waitDone(answer)
  // A normal end: no error, no "cut" notice, no Continue.
  await expect(answer.getByRole('alert')).toHaveCount(0)
  await expect(answer.getByRole('note')).toHaveCount(0)
  await expect(calls(answer)).toHaveCount(1)
  await expect(answer.getByRole('group', { name: 'Tool calls' })).toBeVisible()
  const args = await expectCall(answer, 'get_weather')
  expect(typeof args.city).toBe('string')
  expect(['celsius', 'fahrenheit']).toContain(args.unit)
  await expect(calls(answer).first()).toContainText('The chat page shows tool calls but does not run them.')

  await page.reload()
  const again = lastAnswer(page)
  await expect(calls(again)).toHaveCount(1)
  expect(await expectCall(again, 'get_weather')).toEqual(args)
  await shootAll(page, 'en')

  // The next turn sends the call back, answered by a tool message: the server takes the history.
  await page.setViewportSize(SIZES.desktop)
  const next = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'And in Rome?')
  const messages = ((await next).postDataJSON() as { messages: Record<string, unknown>[] }).messages
  const callId = (messages[1]?.tool_calls as { id: string }[] | undefined)?.[0]?.id
  expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'user'])
  expect(messages[1]).toMatchObject({ content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather' } }] })
  expect(messages[2]).toEqual({ role: 'tool', tool_call_id: callId, content: 'The chat page does not run tools; no result.' })
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).getByRole('alert')).toHaveCount(0)
  await expect(calls(lastAnswer(page))).toHaveCount(1)
})

test.describe('a browser set to Chinese', () => {
  test.use({ locale: 'zh-CN' })

  test('screenshots: a tool call in Chinese, light and dark, desktop and phone', async ({ page }) => {
    const conversation = {
      id: 'tools-zh',
      title: '巴黎的天气怎么样？',
      tools: TOOLS,
      toolChoice: 'required',
      messages: [
        { id: 'q', role: 'user', content: '巴黎的天气怎么样？', createdAt: 1 },
        {
          id: 'a',
          role: 'assistant',
          content: '',
          createdAt: 2,
          status: 'done',
          finishReason: 'tool_calls',
          toolCalls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "巴黎", "unit": "celsius"}' } },
          ],
        },
      ],
    }
    await page.goto('/')
    await page.locator('input[type="file"]').setInputFiles({
      name: 'tools.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify([conversation])),
    })
    await page.getByRole('navigation').getByRole('button', { name: conversation.title, exact: true }).click()
    const answer = lastAnswer(page)
    await expect(answer.getByRole('group', { name: '工具调用' })).toBeVisible()
    expect(await expectCall(answer, /工具调用\s*get_weather/)).toEqual({ city: '巴黎', unit: 'celsius' })
    await expect(calls(answer).first()).toContainText('聊天页面只显示工具调用，不会执行它们。')
    await shootAll(page, 'zh')
    // The chat's tools came with the import: the settings show them.
    await page.getByRole('button', { name: '对话设置' }).click()
    const dialog = page.getByRole('dialog', { name: '对话设置' })
    await expect(dialog.getByRole('combobox', { name: '工具选择' })).toHaveValue('required')
    expect(JSON.parse(await dialog.getByRole('textbox', { name: '工具' }).inputValue())).toEqual(TOOLS)
  })
})
