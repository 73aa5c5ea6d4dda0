import type { Page } from '@playwright/test'
import { answers, expect, extendChatRequests, isChatPost, lastAnswer, recordChatAnswers, send, shot, test, waitDone } from './fixtures.ts'

const questions = (page: Page) => page.locator('article.msg.user')
const questionTexts = (page: Page) => questions(page).locator('.bubble')
const versions = (page: Page, name = 'Versions') => page.getByRole('group', { name })

async function ask(page: Page, text: string): Promise<void> {
  await send(page, text)
  await waitDone(lastAnswer(page))
}

test('edit and regenerate keep history as branches: ‹ 2/2 ›, switch back, reload', async ({ page }) => {
  // Five short answers from the real model.
  test.setTimeout(300_000)
  await page.goto('/')
  const turns = ['Name a colour.', 'Name a fruit.', 'Name an animal.']
  for (const q of turns) await ask(page, q)
  const originalAnswers = await answers(page).locator('.md').allTextContents()
  await expect(versions(page)).toHaveCount(0)

  // Edit the first of three turns: a new version of it, with its own answer; nothing is lost.
  const first = questions(page).first()
  await first.getByRole('button', { name: 'Edit message' }).click()
  await page.getByRole('textbox', { name: 'Edit message' }).fill('Name a country.')
  await page.getByRole('button', { name: 'Save & send' }).click()
  await waitDone(lastAnswer(page))
  await expect(questionTexts(page)).toHaveText(['Name a country.'])
  await expect(answers(page)).toHaveCount(1)
  await expect(first.getByRole('group', { name: 'Versions' })).toContainText('2/2')

  // ‹ shows the original first turn and the two turns that followed it.
  await first.getByRole('button', { name: 'Previous version' }).click()
  await expect(questionTexts(page)).toHaveText(turns)
  await expect(answers(page).locator('.md')).toHaveText(originalAnswers)
  await expect(first.getByRole('group', { name: 'Versions' })).toContainText('1/2')
  await expect(first.getByRole('button', { name: 'Previous version' })).toBeDisabled()

  // Regenerate the last answer: ‹ 2/2 › on the answer, the first version one click away.
  await lastAnswer(page).getByRole('button', { name: 'Regenerate' }).click()
  await waitDone(lastAnswer(page))
  await expect(answers(page)).toHaveCount(3)
  await expect(lastAnswer(page).getByRole('group', { name: 'Versions' })).toContainText('2/2')
  const regenerated = await lastAnswer(page).locator('.md').textContent()
  await lastAnswer(page).getByRole('button', { name: 'Previous version' }).click()
  await expect(lastAnswer(page).locator('.md')).toHaveText(originalAnswers[2] ?? '')
  await lastAnswer(page).getByRole('button', { name: 'Next version' }).click()
  await expect(lastAnswer(page).locator('.md')).toHaveText(regenerated ?? '')

  // A reload keeps every branch and the one shown (written at once when an answer ends).
  await page.reload()
  await expect(questionTexts(page)).toHaveText(turns)
  await expect(lastAnswer(page).locator('.md')).toHaveText(regenerated ?? '')
  await expect(lastAnswer(page).getByRole('group', { name: 'Versions' })).toContainText('2/2')
  await questions(page).first().getByRole('button', { name: 'Next version' }).click()
  await expect(questionTexts(page)).toHaveText(['Name a country.'])
  await shot(page, 'branches-after-edit')

  // Deleting a version (after confirming) removes it and what followed it.
  await questions(page).first().getByRole('button', { name: 'Delete this version' }).click()
  await questions(page).first().getByRole('button', { name: 'Delete', exact: true }).click()
  await expect(questionTexts(page)).toHaveText(turns)
  await expect(questions(page).first().getByRole('group', { name: 'Versions' })).toHaveCount(0)
})

test('an answer cut at max_tokens says so; Continue carries on the same message', async ({ page }) => {
  test.setTimeout(240_000)
  // ignore_eos: the answer runs to max_tokens (40), so it is always cut by the length limit.
  const raw = await recordChatAnswers(page, { ignore_eos: true })
  await page.goto('/')
  await ask(page, 'Tell me a long story about a lighthouse keeper.')
  const notice = lastAnswer(page).getByRole('note')
  await expect(notice).toContainText('The answer hit the length limit')
  await expect(lastAnswer(page).locator('.metrics')).toContainText('40 tokens')
  const before = (await lastAnswer(page).locator('.md').textContent()) ?? ''
  await shot(page, 'cut-at-length')

  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await notice.getByRole('button', { name: 'Continue' }).click()
  const body = (await request).postDataJSON() as { messages: { role: string; content: string }[] }
  expect(body).toMatchObject({ continue_final_message: true, add_generation_prompt: false })
  expect(body.messages.at(-1)).toEqual({ role: 'assistant', content: raw[0] })
  await waitDone(lastAnswer(page))

  // Still one question and one answer: the same bubble grew.
  await expect(questions(page)).toHaveCount(1)
  await expect(answers(page)).toHaveCount(1)
  const after = (await lastAnswer(page).locator('.md').textContent()) ?? ''
  expect(after.length).toBeGreaterThan(before.length)
  // Its opening is kept (the whole rendering may change: a continued answer can close a markdown mark).
  expect(after.replace(/\s+/g, '')).toContain(before.replace(/\s+/g, '').slice(0, 20))
  await expect(lastAnswer(page).locator('.metrics')).toContainText('80 tokens')
  await expect(lastAnswer(page).getByRole('note')).toContainText('The answer hit the length limit')
  await shot(page, 'continued')
})

test('a server that does not offer continue_final_message gets Continue as a new turn', async ({ page }) => {
  test.setTimeout(240_000)
  await extendChatRequests(page, { ignore_eos: true })
  // The same real server, its model list without the capability (as vLLM's or another server's).
  await page.route('**/v1/models', async (route) => {
    const res = await route.fetch()
    const body = (await res.json()) as { data: { capabilities?: string[] }[] }
    for (const m of body.data) m.capabilities = m.capabilities?.filter((c) => c !== 'continue_final_message')
    await route.fulfill({ response: res, json: body })
  })
  await page.goto('/')
  await ask(page, 'Tell me a long story about a lighthouse keeper.')
  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await lastAnswer(page).getByRole('note').getByRole('button', { name: 'Continue' }).click()
  const body = (await request).postDataJSON() as Record<string, unknown>
  expect(body).not.toHaveProperty('continue_final_message')
  await waitDone(lastAnswer(page))
  await expect(questionTexts(page)).toHaveText(['Tell me a long story about a lighthouse keeper.', 'Continue'])
  await expect(answers(page)).toHaveCount(2)
})

/** A conversation with two versions of the question and of the answer, imported (no model needed). */
function treeFile(question: [string, string], answer: [string, string], follow: string): string {
  const conversation = {
    id: 'branches-shot',
    title: question[1],
    createdAt: 1,
    updatedAt: Date.now(),
    systemPrompt: '',
    params: { temperature: 0.7, top_p: 0.95, max_tokens: 40, seed: null },
    model: '',
    current: 'a2',
    messages: [
      { id: 'q1', role: 'user', content: question[0], createdAt: 1, parentId: null },
      { id: 'a1', role: 'assistant', content: answer[0], createdAt: 2, status: 'done', parentId: 'q1' },
      { id: 'q2', role: 'user', content: question[1], createdAt: 3, parentId: null },
      { id: 'a2a', role: 'assistant', content: answer[0], createdAt: 4, status: 'done', parentId: 'q2' },
      { id: 'a2', role: 'assistant', content: answer[1], createdAt: 5, status: 'done', parentId: 'q2', finishReason: 'length' },
      { id: 'q3', role: 'user', content: follow, createdAt: 6, parentId: 'a2a' },
    ],
  }
  return JSON.stringify({ format: 'localchat.conversations', version: 1, conversations: [conversation] })
}

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } }

async function shootBranches(page: Page, lang: 'en' | 'zh', file: string, title: string, group: string) {
  await page.goto('/')
  await page.locator('input[type="file"]').setInputFiles({ name: 'tree.json', mimeType: 'application/json', buffer: Buffer.from(file) })
  await page.getByRole('navigation').getByRole('button', { name: title, exact: true }).click()
  for (const scheme of ['light', 'dark'] as const) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.emulateMedia({ colorScheme: scheme })
      // Crossing the phone breakpoint hides the conversation list (a drawer there).
      await page.setViewportSize(viewport)
      await expect(page.getByRole('heading', { level: 1 })).toHaveText(title)
      await expect(versions(page, group)).toHaveCount(2)
      await expect(versions(page, group).first()).toContainText('2/2')
      await shot(page, `branches-${lang}-${scheme}-${size}`)
    }
  }
}

test('screenshots: the ‹ 2/2 › control in English, light and dark, desktop and phone', async ({ page }) => {
  await shootBranches(
    page,
    'en',
    treeFile(['What is the capital of France?', 'What is the capital of Italy?'], ['Paris.', 'The capital of Italy is Rome, a city'], 'And its river?'),
    'What is the capital of Italy?',
    'Versions',
  )
})

test.describe('a browser set to Chinese', () => {
  test.use({ locale: 'zh-CN' })

  test('screenshots: the ‹ 2/2 › control in Chinese, light and dark, desktop and phone', async ({ page }) => {
    await shootBranches(
      page,
      'zh',
      treeFile(['法国的首都是哪里？', '意大利的首都是哪里？'], ['巴黎。', '意大利的首都是罗马，这座城市'], '那条河叫什么？'),
      '意大利的首都是哪里？',
      '版本',
    )
    await expect(lastAnswer(page).getByRole('note')).toContainText('长度上限')
    await expect(lastAnswer(page).getByRole('note').getByRole('button', { name: '继续' })).toBeVisible()
  })
})
