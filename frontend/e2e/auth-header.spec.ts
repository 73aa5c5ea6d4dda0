import type { Browser, Page } from '@playwright/test'
import { expect, expectAccessible, lastAnswer, seedSettings, send, SHORT, test, waitDone } from './fixtures.ts'
import { teamServer } from './teamServer.ts'

/**
 * A team's server behind an SSO proxy (AUTH=header): the proxy, here the browser itself on
 * 127.0.0.1 (TRUSTED_PROXIES), names the person in X-Forwarded-User as oauth2-proxy would.
 * That the header is ignored from any other address is tested in backend/tests/test_accounts.py.
 */
const server = teamServer('auth-header', { AUTH: 'header', TRUSTED_PROXIES: '127.0.0.1' })

const sidebar = (page: Page) => page.getByRole('navigation', { name: /Conversations|对话列表/ })

/** A new browser (its own cookies and IndexedDB) whose every request the proxy signs as `user`. */
async function behindProxy(browser: Browser, user: string, language: 'en' | 'zh' = 'en'): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.baseUrl, extraHTTPHeaders: { 'X-Forwarded-User': user } })
  // Answers of a few tokens: what is kept matters here, not what it says.
  await seedSettings(context, { language, defaultParams: { ...SHORT, max_tokens: 8 } })
  const page = await context.newPage()
  await page.goto('/')
  return page
}

/** What the server keeps for `user` (asked through the "proxy" too). */
async function kept(user: string): Promise<{ title: string; messages: number }[]> {
  const res = await fetch(`${server.baseUrl}/api/conversations?since=0`, { headers: { 'X-Forwarded-User': user } })
  const page = (await res.json()) as { changes: { conversation: { title: string; messages: unknown[] } | null }[] }
  return page.changes.map((c) => ({ title: c.conversation?.title ?? '', messages: c.conversation?.messages.length ?? 0 }))
}

test('AUTH=header: the proxy signs people in, each one’s conversations are kept on the server for them alone', async ({
  browser,
}) => {
  test.setTimeout(180_000)
  // Signed in by the proxy: no sign-in form, no Sign out (that is the proxy's); the first is admin.
  const hana = await behindProxy(browser, 'hana')
  await expect(hana.getByText('Signed in as hana')).toBeVisible()
  await expect(hana.getByLabel('Password')).toHaveCount(0)
  await expect(hana.getByRole('button', { name: 'Sign out' })).toHaveCount(0)
  await expect(hana.getByRole('button', { name: 'Admin', exact: true })).toBeVisible()
  await send(hana, 'Say hello to Hana.')
  await waitDone(lastAnswer(hana))
  await expect(hana.getByText('Synced', { exact: true })).toBeVisible()
  await expect.poll(() => kept('hana')).toEqual([{ title: 'Say hello to Hana.', messages: 2 }])

  // Ivan, named by the proxy in another browser, is made on first sight and sees none of Hana's.
  const ivan = await behindProxy(browser, 'ivan')
  await expect(ivan.getByText('Signed in as ivan')).toBeVisible()
  await expect(ivan.getByRole('button', { name: 'Admin', exact: true })).toHaveCount(0)
  await expect(sidebar(ivan)).toContainText('No conversations yet')
  await send(ivan, 'Say hello to Ivan.')
  await waitDone(lastAnswer(ivan))
  await expect.poll(() => kept('ivan')).toEqual([{ title: 'Say hello to Ivan.', messages: 2 }])
  expect(await kept('hana')).toEqual([{ title: 'Say hello to Hana.', messages: 2 }])
  // His own account: API keys, but no password (the proxy's business).
  await ivan.getByRole('button', { name: 'Your account' }).click()
  const account = ivan.getByRole('dialog', { name: 'Your account' })
  await expect(account.getByRole('heading', { name: 'API keys' })).toBeVisible()
  await expect(account.getByRole('heading', { name: 'Change password' })).toHaveCount(0)
  await expectAccessible(ivan, 'own account, AUTH=header')

  // Hana on a second device (in Chinese) finds hers with its answer, and not Ivan's.
  const again = await behindProxy(browser, 'hana', 'zh')
  await expect(again.getByText('已登录：hana')).toBeVisible()
  const hers = sidebar(again).getByRole('button', { name: 'Say hello to Hana.', exact: true })
  await hers.click()
  await expect(lastAnswer(again).locator('.md')).toHaveText((await lastAnswer(hana).locator('.md').textContent()) ?? '')
  await expect(sidebar(again)).not.toContainText('Say hello to Ivan.')

  // Reached without the proxy (no header): the page says where to sign in, not a broken chat.
  const direct = await (await browser.newContext({ baseURL: server.baseUrl })).newPage()
  await direct.goto('/')
  await expect(direct.getByRole('heading', { name: 'Not signed in' })).toBeVisible()
  await expect(direct.getByRole('textbox', { name: 'Message', exact: true })).toHaveCount(0)
  await expectAccessible(direct, 'not signed in, AUTH=header')
})
