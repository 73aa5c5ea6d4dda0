// One conversation in the real page through Nginx, turn by turn, in Debian's Chromium. The test
// acts between turns (it reads which replica answered, kills one): after each turn this prints
// one JSON line and waits for a line on stdin before sending the next message.
//
//   node deploy/tests/browser_conversation.mjs http://127.0.0.1:8080 TURNS
//
// Per turn: the X-Conversation-Id the page sent, the HTTP status it got, the answer's text and
// any alert (error notice) shown in the page. Answers are kept short (max_tokens set on the way
// out). Uses the frontend's own playwright-core; never downloads a browser.
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const frontend = resolve(here, '..', '..', 'frontend')
const { chromium } = createRequire(join(frontend, 'package.json'))('playwright-core')
// The frontend's e2e tests launch Chromium with the same path and flags.
const CHROMIUM = JSON.parse(readFileSync(join(frontend, 'e2e', 'chromium.json'), 'utf8'))

const [siteUrl, turnsArg] = process.argv.slice(2)
if (!siteUrl || !turnsArg) {
  console.error('usage: browser_conversation.mjs SITE_URL TURNS')
  process.exit(2)
}
const TURNS = Number(turnsArg)
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? CHROMIUM.executablePath,
  headless: true,
  args: CHROMIUM.args,
})
try {
  const page = await (await browser.newContext({ locale: 'en-US' })).newPage()
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(String(e)))
  let conversationId = null
  await page.route('**/v1/chat/completions', async (route) => {
    conversationId = route.request().headers()['x-conversation-id'] ?? null
    const body = JSON.parse(route.request().postData() ?? '{}')
    await route.continue({ postData: JSON.stringify({ ...body, max_tokens: 8 }) })
  })
  await page.goto(siteUrl + '/', { waitUntil: 'load' })
  const box = page.getByRole('textbox', { name: 'Message', exact: true })
  await box.waitFor({ state: 'visible', timeout: 30_000 })

  for (let turn = 1; turn <= TURNS; turn++) {
    if (turn > 1) await stdin.next()
    const answered = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions'), { timeout: 120_000 })
    await box.fill(`Turn ${turn}: name a colour.`)
    await box.press('Enter')
    const response = await answered
    const last = page.locator('article.msg.assistant').nth(turn - 1)
    await last.waitFor({ state: 'attached', timeout: 30_000 })
    await page.waitForFunction(
      (el) => el?.getAttribute('aria-busy') === 'false',
      await last.elementHandle(),
      { timeout: 120_000 },
    )
    const alerts = await page.locator('[role="alert"]').allInnerTexts()
    console.log(
      JSON.stringify({ turn, conversationId, status: response.status(), answer: await last.innerText(), alerts, pageErrors }),
    )
  }
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.stack ?? e) }))
} finally {
  await browser.close()
}
