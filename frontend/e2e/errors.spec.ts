import { connect, createServer, type Socket } from 'node:net'
import { freePort } from './net.ts'
import { expect, extendChatRequests, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'

test.describe('a first visit without the server key', () => {
  test.use({ withKey: false })

  test('401: the page asks for the key inline, then the answer streams', async ({ page, apiKey }) => {
    await page.goto('/')
    const banner = page.locator('.banner')
    await expect(banner.getByRole('alert')).toContainText('This server needs an API key')
    await expect(page.getByRole('combobox', { name: 'Model' })).toBeDisabled()

    await send(page, 'Hello!')
    const notice = lastAnswer(page).getByRole('alert')
    await expect(notice).toContainText('This server needs an API key')
    await shot(page, 'error-401')
    await notice.getByRole('textbox', { name: 'API key' }).fill(apiKey)
    await notice.getByRole('button', { name: 'Save key & retry' }).click()

    await waitDone(lastAnswer(page))
    await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
    await expect(lastAnswer(page).getByRole('alert')).toHaveCount(0)
    // The saved key also fixed the model list.
    await expect(banner).toHaveCount(0)
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('SmolLM2-135M-Instruct')
    // The model loaded at start-up, and the second one the test server keeps in MODELS_DIR.
    await expect(page.getByRole('combobox', { name: 'Model' }).locator('option')).toHaveText([
      /^SmolLM2-135M-Instruct · [\d.]+ MB$/,
      /^second-model · [\d.]+ MB/,
    ])
  })
})

test('context too long: the server error is shown inline with what to do', async ({ page }) => {
  await page.goto('/')
  await send(page, 'hello '.repeat(9000))
  const notice = lastAnswer(page).getByRole('alert')
  await expect(notice).toContainText('The conversation is too long for the model')
  await expect(notice).toContainText('edit your last message to be shorter')
  await shot(page, 'error-context-length')
  await notice.getByRole('button', { name: 'New chat' }).click()
  await expect(page.getByRole('heading', { name: 'What can I help with?' })).toBeVisible()
})

test('429: a full queue says the server is busy, and retry works', async ({ page, apiKey }) => {
  await page.goto('/')
  // Another client fills the test server's 12 places (MAX_NUM_SEQS 4 + MAX_WAITING 8) with one
  // request of n = 12, so the page's request gets the real server's 429.
  const origin = new URL(page.url()).origin
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}` }
  const models = (await (await fetch(`${origin}/v1/models`, { headers })).json()) as { data: { id: string }[] }
  const blocker = new AbortController()
  const busy = await fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers,
    signal: blocker.signal,
    body: JSON.stringify({
      model: models.data[0].id,
      messages: [{ role: 'user', content: 'Write a long story.' }],
      n: 12,
      max_tokens: 2000,
      ignore_eos: true,
      stream: true,
    }),
  })
  expect(busy.status).toBe(200)
  await send(page, 'Hello there.')
  const notice = lastAnswer(page).getByRole('alert')
  await expect(notice).toContainText('The server is busy')
  await expect(notice).toContainText('Wait a moment and retry')
  await shot(page, 'error-429')
  blocker.abort()
  await notice.getByRole('button', { name: 'Retry', exact: true }).click()
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
})

test('server unreachable: inline error, fixed in Settings, then retry works', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('combobox', { name: 'Model' })).toBeEnabled()
  const port = await freePort()

  await page.getByRole('button', { name: 'Settings', exact: true }).click()
  const settings = page.getByRole('dialog', { name: 'Settings' })
  await settings.getByRole('textbox', { name: 'API base URL' }).fill(`http://127.0.0.1:${port}/v1`)
  await settings.getByRole('button', { name: 'Save' }).click()

  await send(page, 'Are you there?')
  const notice = lastAnswer(page).getByRole('alert')
  await expect(notice).toContainText('Can’t reach the server')
  await expect(notice).toContainText(`http://127.0.0.1:${port}/v1`)
  await shot(page, 'error-unreachable')

  await notice.getByRole('button', { name: 'Open settings' }).click()
  await settings.getByRole('textbox', { name: 'API base URL' }).fill('')
  await settings.getByRole('button', { name: 'Save' }).click()
  // The notice follows the new setting instead of naming the old address as the one to check.
  await expect(notice).toContainText(`This happened at http://127.0.0.1:${port}/v1. Settings now use ${new URL('/v1', page.url()).href}`)
  await expect(notice).not.toContainText('Failed to fetch')
  await notice.getByRole('button', { name: 'Retry' }).click()
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
})

/** A plain TCP relay to the backend whose connections the test can cut, like a dropped network. */
async function relay(target: URL): Promise<{ url: string; cut: () => void; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}/`,
    cut: () => {
      for (const s of sockets) s.resetAndDestroy()
    },
    close: () => {
      server.close()
      for (const s of sockets) s.destroy()
      return Promise.resolve()
    },
  }
}

test('a connection lost mid-answer keeps what arrived and offers retry', async ({ page, baseURL }) => {
  // The page is loaded through the relay too, so the API stays same-origin.
  const network = await relay(new URL(baseURL ?? ''))
  try {
    await page.goto(network.url)
    await extendChatRequests(page, { ignore_eos: true })
    await page.getByRole('button', { name: 'Conversation settings' }).click()
    await page.getByRole('dialog').getByLabel('Max tokens').fill('1000')
    await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click()
    await send(page, 'Write a long essay about rivers.')
    const answer = lastAnswer(page)
    await expect(answer.locator('.md')).toHaveText(/\S{3,}.*\S/)

    network.cut()
    await expect(answer.getByRole('alert')).toContainText('The answer was cut off')
    const partial = await answer.locator('.md').textContent()
    expect(partial?.length).toBeGreaterThan(0)
    await expect(answer).toHaveAttribute('aria-busy', 'false')
    await shot(page, 'error-interrupted')

    await answer.getByRole('button', { name: 'Retry' }).click()
    await expect(lastAnswer(page).getByRole('alert')).toHaveCount(0)
    await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
    await page.keyboard.press('Escape')
    await waitDone(lastAnswer(page))
  } finally {
    await network.close()
  }
})

test('a base URL without /v1 is recognised (the server answers that it has no such route) and fixed in one click', async ({
  page,
  baseURL,
}) => {
  await page.goto('/')
  await page.getByRole('button', { name: 'Settings', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Settings', exact: true })
  await dialog.getByLabel('API base URL').fill(baseURL ?? '')
  await dialog.getByRole('button', { name: 'Test connection' }).click()
  await expect(dialog.getByRole('status')).toContainText('is not where the API is')
  await dialog.getByRole('button', { name: 'Save' }).click()

  const banner = page.locator('.banner').getByRole('alert')
  await expect(banner).toContainText('This address is not the API')
  await expect(banner).not.toContainText('JSON.parse')
  await shot(page, 'error-not-api')
  await banner.getByRole('button', { name: `Use ${baseURL}/v1` }).click()
  await expect(page.locator('.banner')).toHaveCount(0)
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('SmolLM2-135M-Instruct')
  await send(page, 'Hello!')
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
})
