import { expect, extendChatRequests, lastAnswer, send, test, waitDone } from './fixtures.ts'

const TOKENS = 80

const QUESTION = 'Tell me a long story about a lighthouse keeper.'

/**
 * A reload mid-answer: the server keeps the answer going (X-Message-Id, STREAM_RESUME_S) and the
 * reloaded page picks it up, from its first chunk, and follows it to its end.
 */
test('an answer goes on through a reload and ends complete', async ({ page }) => {
  await extendChatRequests(page, { max_tokens: TOKENS, ignore_eos: true })
  await page.goto('/')
  await send(page, QUESTION)
  const answer = lastAnswer(page)
  await expect(answer.locator('.md')).toHaveText(/\S+\s+\S+\s+\S+/)
  const resumed = page.waitForRequest((r) => r.method() === 'GET' && /\/v1\/stream\/[^/]+\/[^/]+$/.test(r.url()))
  await page.reload()
  const request = await resumed
  expect(request.headers()['x-conversation-id']).toBeTruthy()
  // It streams again after the reload (not shown interrupted), then ends whole.
  await waitDone(lastAnswer(page), 60_000)
  await expect(lastAnswer(page).locator('.badge')).toHaveCount(0)
  await expect(lastAnswer(page).locator('.metrics')).toContainText(`${TOKENS} tokens`)
  await expect(page.getByRole('button', { name: 'Stop' })).toHaveCount(0)
})

/** The tab writing an answer closes: another tab showing the conversation picks the answer up. */
test('an answer goes on in another tab when its tab closes', async ({ context, page }) => {
  await extendChatRequests(page, { max_tokens: TOKENS, ignore_eos: true })
  await page.goto('/')
  const other = await context.newPage()
  await other.goto('/')
  await send(page, QUESTION)
  await expect(lastAnswer(page).locator('.md')).toHaveText(/\S+\s+\S+\s+\S+/)
  await other.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: QUESTION, exact: true }).click()
  await expect(lastAnswer(other)).toHaveAttribute('aria-busy', 'true')
  await page.close()
  await waitDone(lastAnswer(other), 60_000)
  await expect(lastAnswer(other).locator('.badge')).toHaveCount(0)
  await expect(lastAnswer(other).locator('.metrics')).toContainText(`${TOKENS} tokens`)
})
