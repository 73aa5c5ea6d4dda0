import { answers, composer, expect, expectAccessible, extendChatRequests, shot, test, waitDone } from './fixtures.ts'
import { setSettings } from './helpers.ts'
import { scriptedServer } from './scripted.ts'

// 30 words 80 ms apart: each answer takes 2.4 s, long enough to see both being written at once.
const pieces = Array.from({ length: 30 }, (_, i) => `word${i} `)

test('side by side: two answers stream at once in columns, Keep this one, it survives a reload', async ({ page }) => {
  const server = await scriptedServer(pieces, 80)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    await composer(page).fill('Name a colour.')
    await page.getByRole('button', { name: 'Compare: ask two ways side by side' }).click()
    const dialog = page.getByRole('dialog', { name: 'Side by side' })
    // One model listed: the second column offers it warmer.
    await expect(dialog.getByLabel('Temperature')).toHaveValue('1.2')
    await dialog.getByLabel('Seed').fill('7')
    await shot(page, 'compare-dialog-en-desktop')
    await dialog.getByRole('button', { name: 'Ask both' }).click()

    const first = page.getByRole('region', { name: 'Answer 1: scripted · temperature 0.7' })
    const second = page.getByRole('region', { name: 'Answer 2: scripted · temperature 1.2 · seed 7' })
    // Both are being written at the same moment, each with some text: read in one go.
    await expect(second.locator('.md')).toContainText('word2')
    const columns = await page.evaluate(() =>
      [...document.querySelectorAll('.compare-column article')].map((a) => [a.getAttribute('aria-busy'), (a.textContent ?? '').includes('word1')]),
    )
    expect(columns).toEqual([
      ['true', true],
      ['true', true],
    ])
    // In columns: side by side, same top.
    const [a, b] = [await first.boundingBox(), await second.boundingBox()]
    expect(a && b && a.x + a.width <= b.x && Math.abs(a.y - b.y) < 2).toBe(true)
    // Each asked with its own settings (in either order: the first column resolves its model first).
    const sent = server.requests.map((r) => [(r as { temperature: number }).temperature, (r as { seed?: number }).seed])
    expect(sent.sort()).toEqual([
      [0.7, undefined],
      [1.2, 7],
    ])
    await expect(page.getByRole('status').filter({ hasText: 'Both answers have finished: keep one.' })).toHaveCount(1)
    // Keep this one in place of Regenerate, which would end the comparison with neither kept.
    await expect(page.locator('.compare').getByRole('button', { name: 'Regenerate' })).toHaveCount(0)
    await expectAccessible(page, 'answers side by side')
    await shot(page, 'compare-en-desktop')
    await page.setViewportSize({ width: 390, height: 844 })
    await shot(page, 'compare-en-phone')
    await page.setViewportSize({ width: 1280, height: 800 })

    // Keep the first: the columns close, it is the version shown (1/2), the other a › away.
    await first.getByRole('button', { name: 'Keep this one' }).click()
    await expect(page.locator('.compare')).toHaveCount(0)
    const versions = page.locator('article.msg.assistant').getByRole('group', { name: 'Versions' })
    await expect(versions).toContainText('1/2')
    await page.reload()
    await expect(versions).toContainText('1/2')
    await expect(page.locator('article.msg.assistant .md')).toHaveText(pieces.join('').trim())

    // The same in Chinese, for the screenshots.
    await setSettings(page, { language: 'zh' })
    await page.locator('#composer-input').fill('说一种颜色。')
    await page.getByRole('button', { name: '对比：用两种方式并排提问' }).click()
    await shot(page, 'compare-dialog-zh-CN-desktop')
    await page.getByRole('button', { name: '两边都问' }).click()
    await expect(page.getByRole('button', { name: '保留这个' })).toHaveCount(2)
    await expect(page.getByRole('button', { name: '保留这个' }).first()).toBeEnabled()
    await shot(page, 'compare-zh-CN-desktop')
    await page.setViewportSize({ width: 390, height: 844 })
    await shot(page, 'compare-zh-CN-phone')
  } finally {
    await server.close()
  }
})

/**
 * The real backend keeps both answers going through a reload (X-Message-Id): the reloaded page
 * resumes them together, under the conversation's one answer lock.
 */
test('answers side by side both go on through a reload', async ({ page }) => {
  const tokens = 60
  await extendChatRequests(page, { max_tokens: tokens, ignore_eos: true })
  await page.goto('/')
  // Read once the server's list has come: before, the picker may show no model yet.
  const model = 'SmolLM2-135M-Instruct'
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue(model)
  await composer(page).fill('Tell me a long story about a lighthouse keeper.')
  await page.getByRole('button', { name: 'Compare: ask two ways side by side' }).click()
  const dialog = page.getByRole('dialog', { name: 'Side by side' })
  // The model already in memory (another would load first), a second seed.
  await dialog.getByLabel('Model').selectOption(model)
  await dialog.getByLabel('Seed').fill('2')
  await dialog.getByRole('button', { name: 'Ask both' }).click()
  for (const column of await page.locator('.compare-column').all()) await expect(column.locator('.md')).toHaveText(/\S+\s+\S+\s+\S+/)
  await page.reload()
  // After the reload the answers are versions (the columns were this tab's view): both end whole.
  await waitDone(answers(page).last(), 60_000)
  await expect(answers(page).last().locator('.metrics')).toContainText(`${tokens} tokens`)
  await answers(page).last().getByRole('button', { name: 'Previous version' }).click()
  await waitDone(answers(page).last(), 60_000)
  await expect(answers(page).last().locator('.metrics')).toContainText(`${tokens} tokens`)
  await expect(answers(page).last().locator('.badge')).toHaveCount(0)
})
