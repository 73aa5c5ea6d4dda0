import type { Page } from '@playwright/test'
import { composer, expect, isChatPost, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'
import { setSettings } from './helpers.ts'

// The backend keeps a second embeddings model in MODELS_DIR (global-setup.ts), not in memory
// until a request names it.
const SECOND = 'second-embedder'

const openSettings = async (page: Page, name = 'Settings') => {
  await page.getByRole('button', { name, exact: true }).click()
  return page.getByRole('dialog', { name })
}

test("the documents' embeddings model is picked like the chat model: it loads with the server's progress, then searches the files", async ({
  page,
}) => {
  test.setTimeout(180_000)
  await page.goto('/')
  const settings = await openSettings(page)
  const picker = settings.getByRole('combobox', { name: 'Embeddings model' })
  await expect(picker.locator('option')).toHaveText([/^all-MiniLM-L6-v2 · [\d.]+ MB$/, /^second-embedder · [\d.]+ MB · not loaded$/])
  // The details the server gives of the model in use.
  await expect(settings.locator('.model-details')).toContainText(/Context[\d,]+ tokens/)
  await expect(settings.locator('.model-details')).toContainText('Parameters22.7M')

  // The load's progress comes from the server (GET /v1/models/second-embedder) as it goes.
  const cards: { state?: string; progress?: number | null }[] = []
  page.on('response', async (r) => {
    if (r.url().endsWith(`/v1/models/${SECOND}`)) cards.push((await r.json()) as (typeof cards)[number])
  })
  await picker.selectOption(SECOND)
  await expect(picker.locator('option', { hasText: SECOND })).toHaveText(/^second-embedder · [\d.]+ MB$/, { timeout: 60_000 })
  // MiniLM loads in about 0.2 s, too soon to be caught half-way (models.spec.ts sees a chat model's
  // percentages through the same followLoad): the page read the server's card until it said loaded.
  expect(cards[0]?.state, JSON.stringify(cards)).toMatch(/^(unloaded|loading)$/)
  expect(cards.at(-1)?.state).toBe('loaded')
  await shot(page, 'embedding-model-en')
  await settings.getByRole('button', { name: 'Cancel' }).click()

  // A file too long to go whole is searched with the chosen model.
  const chooser = page.waitForEvent('filechooser')
  await page.getByRole('button', { name: 'Attach files (text, markdown, code, PDF)' }).click()
  await (await chooser).setFiles({
    name: 'notes.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('The lighthouse keeper logs the weather each morning. '.repeat(200)),
  })
  const embeddings = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/embeddings'))
  const chat = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'What does the keeper log?')
  expect(((await embeddings).postDataJSON() as { model: string }).model).toBe(SECOND)
  await chat
  await waitDone(lastAnswer(page))

  // Chosen, then gone from the server: documents fall back to the server's first, with a notice.
  await setSettings(page, { embeddingModel: 'retired-embedder', language: 'zh' })
  await expect(page.getByRole('status').filter({ hasText: 'retired-embedder' })).toContainText(
    '为文档选择的 retired-embedder 已不在此服务器上：文档改用 all-MiniLM-L6-v2。',
  )
  const zhSettings = await openSettings(page, '设置')
  await expect(zhSettings.getByRole('combobox', { name: '嵌入模型' })).toHaveValue('all-MiniLM-L6-v2')
  await shot(page, 'embedding-model-zh-CN')
})

test('typing / lists the saved prompts; arrows and Enter insert one, Esc closes the list', async ({ page }) => {
  await page.goto('/')
  const settings = await openSettings(page)
  const library = settings.getByRole('group', { name: 'Prompt library' })
  for (const [name, text] of [
    ['Translate', 'Translate into French:'],
    ['Summarise', 'Summarise in three bullet points:'],
  ]) {
    await library.getByLabel('Name').fill(name)
    await library.getByLabel('Text').fill(text)
    await library.getByRole('button', { name: 'Add prompt' }).click()
  }
  await expect(library.getByRole('listitem')).toHaveText([/^Summarise/, /^Translate/])
  await library.getByRole('button', { name: 'Add prompt' }).scrollIntoViewIfNeeded()
  await shot(page, 'prompt-library-en')
  await settings.getByRole('button', { name: 'Save' }).click()

  const box = composer(page)
  await box.fill('/')
  const list = page.getByRole('listbox', { name: 'Saved prompts' })
  await expect(list.getByRole('option')).toHaveText([/^Summarise/, /^Translate/])
  await expect(box).toHaveAttribute('aria-activedescendant', (await list.getByRole('option').first().getAttribute('id')) ?? '')
  await box.press('Escape')
  await expect(list).toBeHidden()
  await box.fill('/t')
  await expect(list.getByRole('option')).toHaveText([/^Translate/])
  await box.fill('/')
  await box.press('ArrowDown')
  await expect(list.getByRole('option', { name: /^Translate/ })).toHaveAttribute('aria-selected', 'true')
  await shot(page, 'prompt-menu-en')
  await box.press('Enter')
  await expect(box).toHaveValue('Translate into French:')
  await expect(list).toBeHidden()

  // The chat model's details, beside its picker; then the list in Chinese.
  await page.getByRole('button', { name: 'Model details' }).click()
  const details = page.getByRole('group', { name: 'Model details: SmolLM2-135M-Instruct' })
  await expect(details).toContainText('Parameters134.5M')
  await expect(details).toContainText('Capabilitieschat, completions')
  await shot(page, 'model-details-en')
  await page.keyboard.press('Escape')
  await expect(details).toBeHidden()
  await setSettings(page, { theme: 'dark' })
  await page.getByRole('button', { name: 'Model details' }).click()
  await expect(details).toContainText('Parameters134.5M')
  await shot(page, 'model-details-en-dark')
  await page.keyboard.press('Escape')
  await expect(details).toBeHidden()
  await setSettings(page, { language: 'zh', theme: 'light' })
  await page.locator('#composer-input').fill('/')
  await expect(page.getByRole('listbox', { name: '已保存的提示词' }).getByRole('option')).toHaveCount(2)
  await page.getByRole('button', { name: '模型详情' }).click()
  await expect(page.getByRole('group', { name: /^模型详情/ })).toContainText('参数量')
  await shot(page, 'prompt-menu-zh-CN')
  const zhLibrary = (await openSettings(page, '设置')).getByRole('group', { name: '提示词库' })
  await zhLibrary.getByRole('button', { name: '添加提示词' }).scrollIntoViewIfNeeded()
  await expect(zhLibrary.getByRole('button', { name: '编辑 Translate' })).toBeVisible()
  await shot(page, 'prompt-library-zh-CN')
})
