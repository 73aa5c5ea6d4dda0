import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, lastAnswer, SHOTS, test } from './fixtures.ts'
import { longTasksSince, recordLongTasks } from './perf.ts'

const LINES = 10_000
const PIECE_LINES = 200

declare global {
  interface Window {
    __pieceCounts: number[]
  }
}

/** A finished answer holding one 10,000-line Python block (~40,000 highlighted spans). */
function exportFile(): string {
  const lines = ['def main():']
  for (let i = 1; i < LINES; i++) lines.push(`    value_${i} = compute("item ${i}", ${i} * 2)  # step ${i}`)
  const answer = `Here is the program:\n\n\`\`\`python\n${lines.join('\n')}\n\`\`\`\n\nRun it with Python 3.`
  const conversation = {
    id: 'long-code',
    title: 'Ten thousand lines',
    createdAt: 1,
    updatedAt: Date.now(),
    systemPrompt: '',
    params: { temperature: 0.7, top_p: 0.95, max_tokens: 40, seed: null },
    model: '',
    messages: [
      { id: 'u', role: 'user', content: 'Write a 10,000-line Python program.', createdAt: 1 },
      { id: 'a', role: 'assistant', content: answer, createdAt: 2, status: 'done' },
    ],
  }
  return JSON.stringify({ format: 'localchat.conversations', version: 1, conversations: [conversation] })
}

/**
 * The small model cannot write 10,000 lines, so the answer comes in through Import; opening it
 * renders the same finished block an answer has when it completes. The block is shown as plain
 * pieces of 200 lines at once; highlighting is worked out in a worker and swapped in a piece per task.
 */
test('a 10,000-line code answer opens without freezing the page, highlighted in pieces', async ({ page }) => {
  test.setTimeout(300_000)
  await recordLongTasks(page)
  await page.goto('/')
  await page.locator('input[type="file"]').setInputFiles({
    name: 'long.json',
    mimeType: 'application/json',
    buffer: Buffer.from(exportFile()),
  })
  const item = page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: 'Ten thousand lines', exact: true })
  await expect(item).toBeVisible()

  const t0 = await page.evaluate(() => {
    // Records how many highlighted pieces the block has after every change to it.
    window.__pieceCounts = []
    new MutationObserver(() => {
      const n = document.querySelectorAll('pre code > .code-piece:has(> span)').length
      if (n !== window.__pieceCounts.at(-1)) window.__pieceCounts.push(n)
    }).observe(document.body, { childList: true, subtree: true })
    return performance.now()
  })
  await item.click()
  const code = lastAnswer(page).locator('pre code')
  await expect(code).toContainText('value_9999 = compute("item 9999", 9999 * 2)  # step 9999')
  const opened = await page.evaluate(() => performance.now())
  // Highlighted to the end: the last line's comment is a highlighted span.
  await expect(code.locator('.hljs-comment').last()).toHaveText('# step 9999', { timeout: 240_000 })
  const done = await page.evaluate(() => performance.now())

  const report = {
    lines: LINES,
    openMs: Math.round(opened - t0),
    highlightedMs: Math.round(done - t0),
    ...(await longTasksSince(page, t0)),
  }
  const { slowestFrames: _details, ...summary } = report
  console.log(`long code: ${JSON.stringify(summary)}`)
  await writeFile(join(SHOTS, 'long-code.json'), JSON.stringify(report, null, 2))
  await page.screenshot({ path: join(SHOTS, 'long-code.png') })

  const pieces = Math.ceil(LINES / PIECE_LINES)
  await expect(code.locator(':scope > .code-piece')).toHaveCount(pieces)
  await expect(code.locator('.hljs-string')).toHaveCount(LINES - 1)
  expect(await code.evaluate((el) => el.textContent?.split('\n').length)).toBe(LINES)
  const counts = await page.evaluate(() => window.__pieceCounts)
  // Swapped in a piece at a time, not all at once.
  expect(counts.filter((n) => n > 0).length).toBeGreaterThan(pieces / 2)
})
