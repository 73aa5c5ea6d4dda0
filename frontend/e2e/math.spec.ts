import { expect, lastAnswer, shot, test } from './fixtures.ts'
import { shotEverywhere } from './helpers.ts'

const ANSWER = [
  'Inline $a^2 + b^2 = c^2$ and \\(x\\,\\mathrm{d}x\\); prices stay text: $5 and $10.',
  '',
  '$$',
  '\\int_0^1 x^2\\,dx = \\frac{1}{3}',
  '$$',
  '',
  '\\[\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\\]',
].join('\n')

/** KaTeX in the real page: the four delimiters, its fonts from this site, display math centred. */
test('TeX answers render with KaTeX', async ({ page }) => {
  await page.goto('/')
  const conversation = {
    id: 'math',
    title: 'Math',
    messages: [
      { role: 'user', content: 'Some formulas, please.' },
      { role: 'assistant', content: ANSWER, status: 'done' },
    ],
  }
  await page.locator('input[type="file"]').setInputFiles({
    name: 'math.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify([conversation])),
  })
  await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: 'Math', exact: true }).click()
  const answer = lastAnswer(page)
  await expect(answer.locator('.katex')).toHaveCount(4)
  await expect(answer.locator('.katex-display')).toHaveCount(2)
  await expect(answer.locator('annotation').nth(1)).toHaveText('x\\,\\mathrm{d}x')
  await expect(answer).toContainText('prices stay text: $5 and $10.')
  // The font arrives after the text is laid out: wait for it (load() rejects if this site lacks it).
  expect(await page.evaluate(async () => (await document.fonts.load('16px KaTeX_Main')).length)).toBeGreaterThan(0)
  expect(await page.evaluate(() => document.fonts.check('16px KaTeX_Main'))).toBe(true)
  await shot(page, 'math')
  await shotEverywhere(page, 'math', async () => {
    await expect(lastAnswer(page).locator('.katex-display')).toHaveCount(2)
  })
})
