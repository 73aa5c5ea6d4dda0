import { expect, extendChatRequests, lastAnswer, send, test, waitDone } from './fixtures.ts'

const TOKENS = 80

/**
 * A reload mid-answer: the server keeps the answer going (X-Message-Id, STREAM_RESUME_S) and the
 * reloaded page picks it up, from its first chunk, and follows it to its end.
 */
test('an answer goes on through a reload and ends complete', async ({ page }) => {
  await extendChatRequests(page, { max_tokens: TOKENS, ignore_eos: true })
  await page.goto('/')
  await send(page, 'Tell me a long story about a lighthouse keeper.')
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
