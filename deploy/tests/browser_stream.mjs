// End to end through Nginx in Debian's Chromium: load the page, send a message, and record how the
// assistant's answer grows in the DOM against the timing of the streamed HTTP response.
//
//   node deploy/tests/browser_stream.mjs http://127.0.0.1:8080 OUT_DIR
//
// Prints one JSON object (read by test_browser.py, which makes the assertions). Uses the
// frontend's own playwright-core (frontend/node_modules, installed by `npm ci`); never
// downloads a browser.
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const frontend = resolve(here, '..', '..', 'frontend')
const { chromium } = createRequire(join(frontend, 'package.json'))('playwright-core')
// The frontend's e2e tests launch Chromium with the same path and flags.
const CHROMIUM = JSON.parse(readFileSync(join(frontend, 'e2e', 'chromium.json'), 'utf8'))

const [siteUrl, outDir] = process.argv.slice(2)
if (!siteUrl || !outDir) {
  console.error('usage: browser_stream.mjs SITE_URL OUT_DIR')
  process.exit(2)
}
mkdirSync(outDir, { recursive: true })

// A long-ish answer of known length: the page's request is sent as the page builds it, with
// max_tokens and ignore_eos added on the way out, so the model cannot stop after a few words.
const MAX_TOKENS = Number(process.env.BROWSER_MAX_TOKENS ?? 100)
const PROMPT = 'Write a long story about a lighthouse keeper and a storm.'

// Runs in the page before its own scripts: records every change of the last assistant
// message's text length on the page's own clock (performance.now()), the same clock as the
// Resource Timing entry of the streamed fetch. CSP violations are recorded too.
function instrument() {
  const w = window
  w.__lc = { samples: [], csp: [] }
  const measure = () => {
    const msgs = document.querySelectorAll('article.msg.assistant')
    const last = msgs[msgs.length - 1]
    if (!last) return
    // The answer's own text: not the hidden "waiting for the first token" status, badges,
    // or the metrics footer shown at the end.
    let len = 0
    for (const node of last.childNodes) {
      if (node.nodeType === 1 && node.matches('[role="status"], .visually-hidden, .badge, footer')) continue
      len += (node.textContent ?? '').length
    }
    const busy = last.getAttribute('aria-busy') === 'true'
    const prev = w.__lc.samples[w.__lc.samples.length - 1]
    if (!prev || prev[1] !== len || prev[2] !== busy) w.__lc.samples.push([performance.now(), len, busy])
  }
  new MutationObserver(measure).observe(document, { subtree: true, childList: true, characterData: true, attributes: true })
  document.addEventListener('securitypolicyviolation', (e) => {
    w.__lc.csp.push(`${e.violatedDirective} ${e.blockedURI}`)
  })
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? CHROMIUM.executablePath,
  headless: true,
  args: CHROMIUM.args,
})
const result = { siteUrl, maxTokens: MAX_TOKENS, console: [], pageErrors: [], failedRequests: [] }
try {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1200, height: 900 } })
  const page = await context.newPage()
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') result.console.push(`${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => result.pageErrors.push(String(e)))
  page.on('requestfailed', (r) => result.failedRequests.push(`${r.url()} ${r.failure()?.errorText}`))
  await page.addInitScript(instrument)

  let sentBody = null
  await page.route('**/v1/chat/completions', async (route) => {
    const body = JSON.parse(route.request().postData() ?? '{}')
    sentBody = { ...body, max_tokens: MAX_TOKENS, ignore_eos: true }
    await route.continue({ postData: JSON.stringify(sentBody) })
  })
  const streamed = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions'), { timeout: 120_000 })

  const t0 = Date.now()
  const resp = await page.goto(siteUrl + '/', { waitUntil: 'load' })
  result.pageStatus = resp?.status() ?? null
  // The message box, found by its accessible name (the page is in English here).
  const box = page.getByRole('textbox', { name: 'Message', exact: true })
  await box.waitFor({ state: 'visible', timeout: 30_000 })
  result.loadMs = Date.now() - t0
  result.title = await page.title()
  result.messageBoxLabel = await box.evaluate((el) => (el.labels?.[0]?.textContent ?? '').trim())
  await page.screenshot({ path: join(outDir, 'loaded.png') })

  await box.fill(PROMPT)
  await box.press('Enter')
  const response = await streamed
  result.contentType = (await response.allHeaders())['content-type'] ?? null
  result.contentEncoding = (await response.allHeaders())['content-encoding'] ?? null
  result.status = response.status()
  await page.waitForTimeout(300)
  await page.screenshot({ path: join(outDir, 'streaming.png') })
  // The stream has finished when the fetch's Resource Timing entry exists.
  await page.waitForFunction(
    () => performance.getEntriesByType('resource').some((e) => e.name.endsWith('/v1/chat/completions') && e.responseEnd > 0),
    null,
    { timeout: 180_000, polling: 100 },
  )
  await page.waitForSelector('article.msg.assistant[aria-busy="false"]', { timeout: 30_000 })
  await page.screenshot({ path: join(outDir, 'done.png'), fullPage: true })

  const timing = await page.evaluate(() => {
    const e = performance
      .getEntriesByType('resource')
      .filter((x) => x.name.endsWith('/v1/chat/completions'))
      .pop()
    return { startTime: e.startTime, requestStart: e.requestStart, responseStart: e.responseStart, responseEnd: e.responseEnd }
  })
  result.timing = timing
  const lc = await page.evaluate(() => window.__lc)
  result.samples = lc.samples
  result.csp = lc.csp
  result.sentBody = sentBody
  result.answer = await page.locator('article.msg.assistant').last().innerText()
  result.userMessage = await page.locator('article.msg.user').last().innerText()
} catch (e) {
  result.error = String(e?.stack ?? e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(result))
