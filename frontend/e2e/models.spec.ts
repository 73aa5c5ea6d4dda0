import { answers, expect, send, shot, test, waitDone } from './fixtures.ts'

// The backend serves a second model from MODELS_DIR (global-setup.ts): not in memory until a
// request names it, then loaded on demand while the page follows the server's progress.
const SECOND = 'second-model'

test('a model that is not loaded shows its size and state, loads when asked, then answers', async ({ page }) => {
  await page.goto('/')
  const picker = page.getByRole('combobox', { name: 'Model' })
  const option = picker.locator('option', { hasText: SECOND })
  await expect(option).toHaveText(/second-model · [\d.]+ (MB|GB) · not loaded/)
  await picker.selectOption(SECOND)
  await expect(page.getByRole('status').filter({ hasText: 'is not loaded' })).toContainText(
    `${SECOND} is not loaded: it loads when you send`,
  )
  await shot(page, 'models-unloaded')

  // The load's progress comes from the server (GET /v1/models/second-model) while the answer waits.
  const cards: { state?: string; progress?: number | null }[] = []
  page.on('response', async (r) => {
    if (r.url().endsWith(`/v1/models/${SECOND}`)) cards.push((await r.json()) as (typeof cards)[number])
  })
  await send(page, 'Say hello.')
  await waitDone(answers(page).last(), 120_000)
  await expect(answers(page).last().locator('.md')).not.toBeEmpty()
  expect(cards.some((c) => c.state === 'loading'), JSON.stringify(cards)).toBe(true)
  await expect(option).toHaveText(/second-model · [\d.]+ (MB|GB)$/)
  await expect(page.getByRole('status').filter({ hasText: SECOND })).toHaveCount(0)
})
