import { chromium, type Page } from '@playwright/test'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHROMIUM, CHROMIUM_ARGS } from './browser.ts'
import { answers, expect, lastAnswer, seedSettings, send, SHORT, test, waitDone } from './fixtures.ts'

test('conversations survive a reload and a browser restart; rename, search, delete, export and import', async ({
  apiKey,
  baseURL,
}) => {
  // A real profile directory, so "restart" is a new browser process reading the same IndexedDB.
  const profile = await mkdtemp(join(tmpdir(), 'localchat-profile-'))
  const launch = async () => {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    })
    await seedSettings(context, { apiKey, defaultParams: SHORT })
    const page = context.pages()[0] ?? (await context.newPage())
    await page.goto(baseURL ?? '/')
    return { context, page }
  }
  const sidebar = (p: Page) => p.getByRole('navigation', { name: 'Conversations' })

  try {
    let { context, page } = await launch()
    await send(page, 'What is the capital of France?')
    await waitDone(lastAnswer(page))
    await page.getByRole('button', { name: 'New chat' }).click()
    await send(page, 'Count to five.')
    await waitDone(lastAnswer(page))
    const answerText = await lastAnswer(page).locator('.md').textContent()

    await page.reload()
    await expect(sidebar(page).getByRole('button', { name: 'What is the capital of France?', exact: true })).toBeVisible()
    await expect(page.locator('article.msg.user')).toHaveText(['Count to five.'])
    await expect(lastAnswer(page).locator('.md')).toHaveText(answerText ?? '')

    // Rename inline.
    await sidebar(page).getByRole('button', { name: 'Rename: What is the capital of France?' }).click()
    const rename = page.getByRole('textbox', { name: 'Rename conversation' })
    await rename.fill('Geography')
    await rename.press('Enter')
    await expect(sidebar(page).getByRole('button', { name: 'Geography', exact: true })).toBeVisible()
    await page.waitForTimeout(800) // the store writes to IndexedDB at most every 500 ms
    await context.close()

    ;({ context, page } = await launch())
    await sidebar(page).getByRole('button', { name: 'Geography', exact: true }).click()
    await expect(page.locator('article.msg.user')).toHaveText(['What is the capital of France?'])
    await expect(answers(page)).toHaveCount(1)
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Geography')

    // Search matches titles and message text.
    const search = page.getByRole('searchbox', { name: 'Search chats' })
    await search.fill('count to')
    await expect(sidebar(page).locator('.conv-title')).toHaveText(['Count to five.'])
    await search.fill('zzz-nothing')
    await expect(sidebar(page)).toContainText('No matching conversations')
    await search.fill('')

    // Export, delete, import back.
    const download = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Export' }).click()
    const file = await (await download).path()
    const exported = JSON.parse(await readFile(file, 'utf8')) as { conversations: { title: string }[] }
    expect(exported.conversations.map((c) => c.title).sort()).toEqual(['Count to five.', 'Geography'])

    await sidebar(page).getByRole('button', { name: 'Delete: Geography' }).click()
    await expect(sidebar(page).locator('.conv-title')).toHaveText(['Count to five.'])

    await page.locator('input[type=file]').setInputFiles(file)
    await expect(page.getByRole('status').filter({ hasText: 'Imported' })).toHaveText('Imported 1 conversations; 1 already here were skipped')
    // The deleted one comes back; the one still present (unchanged) is not duplicated.
    await expect(sidebar(page).locator('.conv-title')).toHaveCount(2)
    await sidebar(page).getByRole('button', { name: 'Geography', exact: true }).click()
    await expect(page.locator('article.msg.user')).toHaveText(['What is the capital of France?'])
    await context.close()
  } finally {
    await rm(profile, { recursive: true, force: true })
  }
})
