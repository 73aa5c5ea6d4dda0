import type { Request } from '@playwright/test'
import { answers, expect, extendChatRequests, isChatPost, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'

test('streams an answer token by token, with tokens, tokens/s and time to first token', async ({ page }) => {
  await page.goto('/')
  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'Tell me three facts about the sea.')

  const body = (await request).postDataJSON() as Record<string, unknown>
  expect(body).toMatchObject({ stream: true, stream_options: { include_usage: true }, max_tokens: 40 })

  // Watch the text grow while the answer is still marked busy.
  const answer = lastAnswer(page)
  const lengths = new Set<number>()
  while ((await answer.getAttribute('aria-busy')) === 'true') {
    const text = (await answer.locator('.md').textContent().catch(() => null)) ?? ''
    if (text.length) lengths.add(text.length)
    await page.waitForTimeout(50)
  }
  expect(lengths.size, 'distinct partial lengths seen while streaming').toBeGreaterThanOrEqual(3)
  await expect(answer.locator('.md')).not.toBeEmpty()
  await expect(answer.locator('.metrics')).toHaveText(/\d+ tokens.*[\d.]+ tokens\/s.*first token [\d.]+ s/)
  await expect(page.getByRole('navigation', { name: 'Conversations' })).toContainText('Tell me three facts')
  await shot(page, 'chat-light')
})

test('keyboard and clipboard: Shift+Enter makes a new line, Enter sends, Copy copies the markdown', async ({
  page,
  context,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'])
  await page.goto('/')
  const input = page.getByRole('textbox', { name: 'Message', exact: true })
  await input.pressSequentially('First line')
  await input.press('Shift+Enter')
  await input.pressSequentially('second line')
  await expect(input).toHaveValue('First line\nsecond line')
  await expect(page.locator('article')).toHaveCount(0)
  await input.press('Enter')
  await expect(input).toHaveValue('')
  await expect(page.locator('article.msg.user')).toHaveText('First line\nsecond line')
  await waitDone(lastAnswer(page))

  await lastAnswer(page).getByRole('button', { name: 'Copy message' }).click()
  await expect(lastAnswer(page).getByRole('button', { name: 'Copied' })).toBeVisible()
  const copied = await page.evaluate(() => navigator.clipboard.readText())
  // The raw markdown of the answer, as saved for this conversation (within half a second).
  const stored = () =>
    page.evaluate(async () => {
      const open = indexedDB.open('localchat')
      await new Promise((r) => (open.onsuccess = r))
      const req = open.result.transaction('conversations').objectStore('conversations').getAll()
      await new Promise((r) => (req.onsuccess = r))
      const [conv] = req.result as { messages: { content: string }[] }[]
      return conv?.messages.at(-1)?.content
    })
  await expect.poll(stored).toBe(copied)
  expect(copied.length).toBeGreaterThan(0)
})

test('every control has an accessible name', async ({ page }) => {
  await page.goto('/')
  await send(page, 'Hi')
  await waitDone(lastAnswer(page))
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll('button, input, select, textarea, a[href]')]
      .filter((el) => {
        const labelled = el.getAttribute('aria-label') || (el as HTMLInputElement).labels?.length
        return !labelled && !el.textContent?.trim() && (el as HTMLInputElement).type !== 'file'
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  )
  expect(unnamed).toEqual([])
})

test('Esc stops mid-answer: the partial answer stays, marked stopped, and the server stops', async ({
  page,
  request,
  apiKey,
}) => {
  await page.goto('/')
  await extendChatRequests(page, { ignore_eos: true })
  // A long answer this time, set in the conversation's settings dialog.
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' })
  await dialog.getByLabel('Max tokens').fill('1500')
  await dialog.getByLabel('System prompt').fill('You are a storyteller.')
  await shot(page, 'chat-settings-dialog')
  await dialog.getByRole('button', { name: 'Save' }).click()
  await expect(dialog).toBeHidden()

  const chatRequest = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'Please continue the story, in much more detail.')
  const sent = (await chatRequest).postDataJSON() as { max_tokens: number; messages: { role: string; content: string }[] }
  expect(sent.max_tokens).toBe(1500)
  expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are a storyteller.' })
  const answer = lastAnswer(page)
  await expect(answer.locator('.md')).toHaveText(/\S{3,}.*\S/, { timeout: 30_000 })
  await page.keyboard.press('Escape')

  await expect(answer.getByText('Stopped')).toBeVisible()
  await expect(answer).toHaveAttribute('aria-busy', 'false')
  const partial = await answer.locator('.md').textContent()
  expect(partial?.length).toBeGreaterThan(0)
  await expect(answer.locator('.metrics')).toHaveText(/~\d+ tokens/)
  await expect(page.getByRole('button', { name: 'Send' })).toBeVisible()

  // The server saw the disconnect: nothing is left generating.
  await expect
    .poll(async () => {
      const health = await request.get('/health', { headers: { Authorization: `Bearer ${apiKey}` } })
      return ((await health.json()) as { running: number }).running
    })
    .toBe(0)
  await page.waitForTimeout(500)
  expect(await answer.locator('.md').textContent()).toBe(partial)
  await shot(page, 'stopped')
})

test('regenerate streams a new version of the last answer in its place', async ({ page }) => {
  await page.goto('/')
  await send(page, 'Name a colour.')
  await waitDone(lastAnswer(page))
  const posts: Request[] = []
  page.on('request', (r) => isChatPost(r.url(), r.method()) && posts.push(r))

  await lastAnswer(page).getByRole('button', { name: 'Regenerate' }).click()
  await expect(lastAnswer(page)).toHaveAttribute('aria-busy', 'true')
  await waitDone(lastAnswer(page))
  expect(posts).toHaveLength(1)
  const sent = posts[0]?.postDataJSON() as { messages: { role: string; content: string }[] }
  // The old answer is not sent back: the model answers the same question afresh.
  expect(sent.messages.map((m) => m.role)).toEqual(['user'])
  await expect(answers(page)).toHaveCount(1)
  await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
  // The first version stays one click away (branches.spec.ts).
  await expect(lastAnswer(page).getByRole('group', { name: 'Versions' })).toContainText('2/2')
})

test('edit a user message and resend: the new version is shown without the later messages', async ({ page }) => {
  await page.goto('/')
  await send(page, 'Say hello.')
  await waitDone(lastAnswer(page))
  await send(page, 'Now say it in French.')
  await waitDone(lastAnswer(page))
  await expect(answers(page)).toHaveCount(2)

  const first = page.locator('article.msg.user').first()
  await first.hover()
  await first.getByRole('button', { name: 'Edit message' }).click()
  const box = page.getByRole('textbox', { name: 'Edit message' })
  await expect(box).toHaveValue('Say hello.')
  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await box.fill('Say goodbye.')
  await page.getByRole('button', { name: 'Save & send' }).click()

  const sent = (await request).postDataJSON() as { messages: { role: string; content: string }[] }
  expect(sent.messages).toEqual([{ role: 'user', content: 'Say goodbye.' }])
  await waitDone(lastAnswer(page))
  await expect(page.locator('article.msg.user .bubble')).toHaveText(['Say goodbye.'])
  await expect(answers(page)).toHaveCount(1)
})

/**
 * Headless Chromium reports every page as visible (microsoft/playwright#1290), so hiding is
 * emulated the way a real hidden tab behaves: visibilityState/hidden say so, a visibilitychange
 * event fires, and requestAnimationFrame callbacks wait until the tab is shown again.
 */
function setHidden(hidden: boolean) {
  const w = window as unknown as { __rafQueue?: FrameRequestCallback[]; __realRaf?: typeof requestAnimationFrame }
  w.__realRaf ??= window.requestAnimationFrame.bind(window)
  w.__rafQueue ??= []
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') })
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden })
  const queue = w.__rafQueue
  const realRaf = w.__realRaf
  window.requestAnimationFrame = hidden ? (cb) => queue.push(cb) : realRaf
  if (!hidden) for (const cb of queue.splice(0)) realRaf(cb)
  document.dispatchEvent(new Event('visibilitychange'))
}

test('a hidden tab keeps streaming, with no second request', async ({ page }) => {
  await page.goto('/')
  await extendChatRequests(page, { ignore_eos: true })
  const posts: string[] = []
  page.on('request', (r) => isChatPost(r.url(), r.method()) && posts.push(r.url()))
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  await page.getByRole('dialog').getByLabel('Max tokens').fill('120')
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click()
  await send(page, 'Describe a forest in detail.')
  const text = lastAnswer(page).locator('.md')
  await expect(text).not.toBeEmpty()

  await page.evaluate(setHidden, true)
  const lengthWhenHidden = (await text.textContent())?.length ?? 0
  await expect.poll(async () => (await text.textContent())?.length ?? 0).toBeGreaterThan(lengthWhenHidden + 20)
  await page.evaluate(setHidden, false)

  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).getByText('Stopped')).toHaveCount(0)
  await expect(lastAnswer(page).locator('.metrics')).toContainText('tokens/s')
  expect(posts).toHaveLength(1)
})
