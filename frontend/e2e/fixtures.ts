import { AxeBuilder } from '@axe-core/playwright'
import type { Result } from 'axe-core'
import { test as base, expect, type BrowserContext, type Locator, type Page, type Route } from '@playwright/test'
import { join } from 'node:path'

export { expect }

export const SHOTS = join(import.meta.dirname, '..', 'test-results')

export interface SeedSettings {
  apiKey?: string
  language?: 'auto' | 'en' | 'zh'
  defaultParams?: { temperature: number; top_p: number; max_tokens: number; seed: number | null }
}

/** Short answers keep the suite fast; the long-stream test asks for its own length. */
export const SHORT = { temperature: 0.7, top_p: 0.95, max_tokens: 40, seed: null }

/**
 * Settings as a returning user would have them; written only on first load, so the page's own
 * changes (language, key) survive a reload.
 */
export async function seedSettings(context: BrowserContext, state: SeedSettings): Promise<void> {
  await context.addInitScript((seed) => {
    if (!localStorage.getItem('localchat.settings')) {
      localStorage.setItem('localchat.settings', JSON.stringify({ state: seed, version: 0 }))
    }
  }, state)
}

export const test = base.extend<{ apiKey: string; withKey: boolean; seed: SeedSettings }>({
  apiKey: async ({}, provide) => provide(process.env.E2E_API_KEY ?? ''),
  /** false: a first visit that does not know the server's key yet. */
  withKey: [true, { option: true }],
  seed: async ({ apiKey, withKey }, provide) => provide({ ...(withKey ? { apiKey } : {}), defaultParams: SHORT }),
  baseURL: async ({}, provide) => provide(process.env.E2E_BASE_URL),
  context: async ({ context, seed }, provide) => {
    await seedSettings(context, seed)
    await provide(context)
  },
})

export const composer = (page: Page) => page.getByRole('textbox', { name: 'Message', exact: true })
export const answers = (page: Page) => page.locator('article.msg.assistant')
export const lastAnswer = (page: Page) => answers(page).last()

export async function send(page: Page, text: string): Promise<void> {
  await composer(page).fill(text)
  await composer(page).press('Enter')
}

export async function waitDone(answer: Locator, timeout = 60_000): Promise<void> {
  await expect(answer).toHaveAttribute('aria-busy', 'false', { timeout })
}

/** No serious or critical WCAG 2.1 A/AA violation (axe) on the page as it is now. */
export async function expectAccessible(page: Page, where: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze()
  const serious = violations
    .filter((v: Result) => v.impact === 'serious' || v.impact === 'critical')
    .map((v: Result) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
  expect(serious, where).toEqual([])
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) })
}

export const isChatPost = (url: string, method: string) => method === 'POST' && url.endsWith('/v1/chat/completions')

/**
 * Adds fields the page has no control for (ignore_eos: the answer runs to max_tokens, so a test
 * that stops or cuts it never finds it already finished) to the requests on their way to the real
 * server. Waiting for a request still sees what the page sent.
 */
export async function extendChatRequests(page: Page, extra: Record<string, unknown>): Promise<void> {
  await page.route('**/v1/chat/completions', (route) => route.continue({ postData: extended(route, extra) }))
}

/** The page's chat request body with `extra` fields added. */
function extended(route: Route, extra: Record<string, unknown>): string {
  return JSON.stringify({ ...(route.request().postDataJSON() as Record<string, unknown>), ...extra })
}

/**
 * extendChatRequests that also keeps the text of each streamed answer as the server wrote it (the
 * page renders markdown and drops trailing whitespace). The page gets each answer whole, not streamed.
 */
export async function recordChatAnswers(page: Page, extra: Record<string, unknown>): Promise<string[]> {
  const texts: string[] = []
  await page.route('**/v1/chat/completions', async (route) => {
    const response = await route.fetch({ postData: extended(route, extra) })
    const sse = await response.text()
    texts.push(
      sse
        .split('\n')
        .filter((line) => line.startsWith('data: {'))
        .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string | null } }[] }).choices[0]?.delta?.content ?? '')
        .join(''),
    )
    await route.fulfill({ response, body: sse })
  })
  return texts
}
