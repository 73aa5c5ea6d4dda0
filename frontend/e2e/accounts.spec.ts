import type { Browser, Page } from '@playwright/test'
import { expect, expectAccessible, lastAnswer, seedSettings, send, shot, SHORT, test, waitDone } from './fixtures.ts'
import { setSettings, shotEverywhere } from './helpers.ts'
import { teamServer } from './teamServer.ts'

/** A team's server with accounts (AUTH=password), started for this file only. */
const server = teamServer('accounts', { AUTH: 'password' })
// The second test is Bob's, whom the admin makes in the first.
test.describe.configure({ mode: 'serial' })

const sidebar = (page: Page) => page.getByRole('navigation', { name: /Conversations|对话列表/ })

/** A new browser (its own cookies and IndexedDB) on the team's server. */
async function browserContext(browser: Browser, language: 'en' | 'zh' = 'en'): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.baseUrl })
  await seedSettings(context, { language, defaultParams: SHORT })
  const page = await context.newPage()
  await page.goto('/')
  return page
}

async function signIn(page: Page, username: string, password: string, button = 'Sign in'): Promise<void> {
  await page.getByLabel(/Username|用户名/).fill(username)
  await page.getByLabel(/Password|密码/).fill(password)
  await page.getByRole('button', { name: button }).click()
}

test('a team: first admin signs up, each account sees only its own conversations, on every device; admin page', async ({
  browser,
}) => {
  test.setTimeout(240_000)
  // The first visitor creates the admin account.
  const alice = await browserContext(browser)
  await expect(alice.getByRole('heading', { name: 'Create the first account' })).toBeVisible()
  await signIn(alice, 'alice', 'short', 'Create account')
  // The server's reason, readable: what to fix.
  await expect(alice.getByRole('alert')).toContainText('8')
  await signIn(alice, 'alice', 'alice-password', 'Create account')
  await expect(alice.getByText('Signed in as alice')).toBeVisible()
  await send(alice, 'Say hello to Alice.')
  await waitDone(lastAnswer(alice))

  // The admin page: creates Bob; lists users and Alice's usage.
  await alice.getByRole('button', { name: 'Admin', exact: true }).click()
  const admin = alice.getByRole('dialog', { name: 'Users and usage' })
  await admin.getByLabel('Username', { exact: true }).fill('bob')
  await admin.getByLabel('Password', { exact: true }).fill('bob-password')
  await admin.getByRole('button', { name: 'Create user' }).click()
  await expect(admin.getByRole('row').filter({ hasText: 'bob' })).toContainText('active')
  await admin.getByLabel('Username', { exact: true }).fill('bob')
  await admin.getByLabel('Password', { exact: true }).fill('another-password')
  await admin.getByRole('button', { name: 'Create user' }).click()
  await expect(admin.getByRole('alert')).toContainText('bob')
  // Bob's own limits: 30 requests a minute, tokens back to the server's default.
  await admin.getByRole('button', { name: 'Limits: bob' }).click()
  const limits = admin.getByRole('form', { name: 'Limits for bob' })
  await limits.getByLabel('Requests per minute').fill('30')
  await limits.getByRole('button', { name: 'Save' }).click()
  await expect(admin.getByRole('status').filter({ hasText: 'Limits of bob saved' })).toBeVisible()
  await expect(admin.getByRole('row').filter({ hasText: 'bob' })).toContainText('30 / minserver default')
  await expect(admin.locator('.usage-table').getByRole('row').filter({ hasText: 'alice' })).toContainText('SmolLM2')
  await expect(admin.getByRole('img', { name: 'Tokens per day' }).locator('rect')).toHaveCount(30)
  await shot(alice, 'accounts-admin-en')
  await expectAccessible(alice, 'admin page')

  // Bob, in another browser: a wrong password is said so; signed in, he sees none of Alice's.
  const bob = await browserContext(browser)
  await expect(bob.getByRole('heading', { name: 'Sign in to LocalChat' })).toBeVisible()
  await shot(bob, 'accounts-signin-en')
  await expectAccessible(bob, 'sign-in')
  await signIn(bob, 'bob', 'wrong-password')
  await expect(bob.getByRole('alert')).toHaveText('Wrong username or password.')
  await signIn(bob, 'bob', 'bob-password')
  await expect(bob.getByText('Signed in as bob')).toBeVisible()
  await expect(sidebar(bob)).toContainText('No conversations yet')
  await bob.getByLabel('Import').setInputFiles({
    name: 'bob.json',
    mimeType: 'application/json',
    buffer: Buffer.from(
      JSON.stringify([
        { id: 'bob-1', title: 'Bob’s plans', createdAt: 1, updatedAt: Date.now(), systemPrompt: '', params: SHORT, model: '', messages: [] },
      ]),
    ),
  })
  await expect(sidebar(bob).getByRole('button', { name: 'Bob’s plans', exact: true })).toBeVisible()
  await expect(bob.getByText('Synced', { exact: true })).toBeVisible()

  // Carol chatted in this browser before the team's accounts (AUTH=none): on her first sign-in
  // that history is offered, and once added the server has every conversation, messages whole.
  await alice.evaluate(async () => {
    const made = await fetch('/auth/users', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'carol', password: 'carol-password' }),
    })
    if (made.status !== 201) throw new Error(await made.text())
  })
  const carol = await browserContext(browser)
  const before = [1, 2].map((n) => ({
    id: `carol-${n}`,
    title: `Before accounts ${n}`,
    createdAt: n,
    updatedAt: n,
    systemPrompt: '',
    params: SHORT,
    model: 'SmolLM2-135M-Instruct',
    current: `a${n}`,
    messages: [
      { id: `q${n}`, role: 'user', content: `Question ${n}`, createdAt: n, parentId: null },
      { id: `a${n}`, role: 'assistant', content: `Answer ${n}`, createdAt: n, parentId: `q${n}`, status: 'done' },
    ],
  }))
  await carol.evaluate(
    (list) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('localchat')
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const tx = open.result.transaction('conversations', 'readwrite')
          for (const c of list) tx.objectStore('conversations').put(c, c.id)
          tx.oncomplete = () => resolve()
          tx.onerror = () => reject(tx.error)
        }
      }),
    before,
  )
  await carol.reload()
  await signIn(carol, 'carol', 'carol-password')
  await expect(carol.getByText('This browser holds 2 conversations from before you signed in.', { exact: false })).toBeVisible()
  await carol.getByRole('button', { name: 'Add to my account' }).click()
  await expect(carol.getByText('Added 2 conversations to your account')).toBeVisible()
  const stored = await carol.evaluate(async () => {
    const all = (await (await fetch('/api/conversations/export')).json()) as { conversations: { id: string; messages: unknown[] }[] }
    return all.conversations.map((c) => [c.id, c.messages.length])
  })
  expect(stored.sort()).toEqual([
    ['carol-1', 2],
    ['carol-2', 2],
  ])
  await carol.context().close()

  // Alice on a third browser (in Chinese) finds her conversation after signing in, and not Bob's.
  const again = await browserContext(browser, 'zh')
  await expect(again.getByRole('heading', { name: '登录 LocalChat' })).toBeVisible()
  await shot(again, 'accounts-signin-zh')
  await signIn(again, 'alice', 'alice-password', '登录')
  await expect(again.getByText('已登录：alice')).toBeVisible()
  const hers = sidebar(again).getByRole('button', { name: 'Say hello to Alice.', exact: true })
  await expect(async () => {
    // Alice's first browser sends the answer once it is finished; a reload takes it in.
    await again.reload()
    await expect(hers).toBeVisible({ timeout: 3_000 })
  }).toPass({ timeout: 20_000 })
  await hers.click()
  await expect(lastAnswer(again).locator('.md')).toHaveText((await lastAnswer(alice).locator('.md').textContent()) ?? '')
  await expect(sidebar(again)).not.toContainText('Bob’s plans')
  await again.getByRole('button', { name: '管理', exact: true }).click()
  await expect(again.getByRole('dialog', { name: '用户与用量' }).getByRole('row').filter({ hasText: 'bob' })).toBeVisible()
  await shot(again, 'accounts-admin-zh')
  await again.keyboard.press('Escape')

  // Both of Alice's browsers change the conversation before either hears of the other: one
  // renames it, the other asks a follow-up on its older copy. The server merges the stale
  // write (a 409, then the difference), and each browser ends with both changes.
  await alice.keyboard.press('Escape')
  await sidebar(alice).getByRole('button', { name: 'Rename: Say hello to Alice.' }).click()
  const rename = alice.getByRole('textbox', { name: 'Rename conversation' })
  await rename.fill('Alice’s greetings')
  await rename.press('Enter')
  await again.locator('#composer-input').fill('And goodbye?')
  await again.locator('#composer-input').press('Enter')
  await waitDone(lastAnswer(again))
  for (const page of [alice, again]) {
    const renamed = sidebar(page).getByRole('button', { name: 'Alice’s greetings', exact: true })
    await expect(async () => {
      await page.reload()
      await renamed.click({ timeout: 3_000 })
      await expect(page.locator('article.msg.user')).toHaveText(['Say hello to Alice.', 'And goodbye?'], { timeout: 3_000 })
    }).toPass({ timeout: 30_000 })
  }

  // Bob's page is still only Bob's, after a reload too; signing out leaves nothing of his here.
  await bob.reload()
  await expect(sidebar(bob).getByRole('button', { name: 'Bob’s plans', exact: true })).toBeVisible()
  await expect(sidebar(bob)).not.toContainText('Say hello to Alice.')
  await bob.getByRole('button', { name: 'Sign out' }).click()
  await expect(bob.getByRole('heading', { name: 'Sign in to LocalChat' })).toBeVisible()
  const cached = () =>
    bob.evaluate(
      () =>
        new Promise<number>((resolve, reject) => {
          const open = indexedDB.open('localchat')
          open.onerror = () => reject(open.error)
          open.onsuccess = () => {
            const count = open.result.transaction('conversations').objectStore('conversations').count()
            count.onsuccess = () => resolve(count.result)
          }
        }),
    )
  await expect.poll(cached).toBe(0)
  // Guessing: after 5 failures an account is throttled, and the page says for how long.
  for (let i = 0; i < 5; i++) {
    await Promise.all([bob.waitForResponse('**/auth/login'), signIn(bob, 'mallory', 'guess')])
  }
  await signIn(bob, 'mallory', 'guess')
  await expect(bob.getByRole('alert')).toHaveText(/^Too many failed sign-ins: try again in \d+ s\.$/)
  await signIn(bob, 'bob', 'bob-password')
  await expect(sidebar(bob).getByRole('button', { name: 'Bob’s plans', exact: true })).toBeVisible()

  // Bob's session ends without a sign-out (expired: the cookie is gone); Alice signs in on his
  // browser and finds her history, none of his, and nothing offered for import.
  await expect(bob.getByText('Synced', { exact: true })).toBeVisible()
  await bob.context().clearCookies()
  await bob.reload()
  await signIn(bob, 'alice', 'alice-password')
  await expect(sidebar(bob).getByRole('button', { name: 'Alice’s greetings', exact: true })).toBeVisible()
  await expect(sidebar(bob)).not.toContainText('Bob’s plans')
  await expect(bob.getByText(/conversations from before you signed in/)).toHaveCount(0)
})

test('own account: an API key shown once works from an SDK until revoked; a changed password signs in', async ({ browser }) => {
  test.setTimeout(180_000)
  const bob = await browserContext(browser)
  await signIn(bob, 'bob', 'bob-password')
  await bob.getByRole('button', { name: 'Your account' }).click()
  const dialog = bob.getByRole('dialog', { name: 'Your account' })
  await expect(dialog.getByText('No keys yet')).toBeVisible()

  // A named key, shown this once with a warning and a Copy button.
  await dialog.getByLabel('Key name').fill('laptop')
  await dialog.getByRole('button', { name: 'Create key' }).click()
  const fresh = dialog.getByRole('group', { name: 'The new key' })
  await expect(fresh).toContainText('it will not be shown again')
  await expect(fresh.getByRole('button', { name: 'Copy key' })).toBeVisible()
  const key = (await fresh.locator('code').textContent()) ?? ''
  expect(key).toMatch(/^sk-lc-/)
  const row = dialog.locator('.keys-table').getByRole('row').filter({ hasText: 'laptop' })
  await expect(row).toContainText(key.slice(0, 12))
  await expect(row).toContainText('never')
  await shot(bob, 'accounts-key-created-en')
  await expectAccessible(bob, 'account dialog with a new key')
  // Closed and opened again, the secret is gone: only its first characters are listed.
  await bob.keyboard.press('Escape')
  await bob.getByRole('button', { name: 'Your account' }).click()
  await expect(row).toBeVisible()
  await expect(dialog).not.toContainText(key)

  // An SDK's call with the key, as Node makes it: a model's answer, counted as Bob's key's usage.
  const asSdk = (path: string, body?: unknown) =>
    fetch(`${server.baseUrl}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    })
  expect((await fetch(`${server.baseUrl}/v1/models`)).status).toBe(401)
  const models = await asSdk('/v1/models')
  expect(models.status).toBe(200)
  const model = ((await models.json()) as { data: { id: string }[] }).data[0]?.id
  const chat = { model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 }
  const answered = await asSdk('/v1/chat/completions', chat)
  expect(answered.status).toBe(200)
  expect(((await answered.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeGreaterThan(0)
  await bob.keyboard.press('Escape')
  await bob.getByRole('button', { name: 'Your account' }).click()
  await expect(row).not.toContainText('never')
  await expect(dialog.locator('.usage-table').getByRole('row').filter({ hasText: 'laptop' })).toContainText('SmolLM2')
  await shotEverywhere(bob, 'accounts-own-account', async () => {
    const account = bob.getByRole('button', { name: /Your account|我的账户/ })
    const toggle = bob.getByRole('button', { name: /Show or hide conversations|显示或隐藏对话列表/ })
    // Once the page shows (the toggle), the account menu is there, unless in a closed sidebar (a phone's drawer).
    await expect(toggle).toBeVisible()
    if (!(await account.isVisible())) await toggle.click()
    await account.click()
    await expect(bob.getByRole('dialog', { name: /Your account|我的账户/ }).locator('.usage-table')).toBeVisible()
  })
  await bob.keyboard.press('Escape')
  await bob.setViewportSize({ width: 1280, height: 800 })
  await setSettings(bob, { language: 'en', theme: 'light' })

  // Revoked (after a confirmation), the key is refused at once.
  await bob.getByRole('button', { name: 'Your account' }).click()
  bob.once('dialog', (confirm) => void confirm.accept())
  await dialog.getByRole('button', { name: 'Revoke: laptop' }).click()
  await expect(dialog.getByRole('status')).toHaveText('Key "laptop" revoked')
  await expect(dialog.getByText('No keys yet')).toBeVisible()
  const refused = await asSdk('/v1/chat/completions', chat)
  expect(refused.status).toBe(401)
  expect(((await refused.json()) as { error: { message: string } }).error.message).toBeTruthy()

  // The password: a wrong current one and two new ones that differ are said so; then changed.
  const changePassword = async (current: string, next: string, again = next) => {
    await dialog.getByLabel('Current password').fill(current)
    await dialog.getByLabel('New password', { exact: true }).fill(next)
    await dialog.getByLabel('New password again').fill(again)
    await dialog.getByRole('button', { name: 'Change password' }).click()
  }
  await changePassword('not-bobs-password', 'bob-new-password')
  await expect(dialog.getByRole('alert')).toHaveText('The current password is wrong.')
  await changePassword('bob-password', 'bob-new-password', 'bob-new-passwort')
  await expect(dialog.getByRole('alert')).toHaveText('The two new passwords differ.')
  await changePassword('bob-password', 'short')
  await expect(dialog.getByRole('alert')).toContainText('8')
  await changePassword('bob-password', 'bob-new-password')
  await expect(dialog.getByRole('status').filter({ hasText: 'Password changed' })).toBeVisible()
  await bob.keyboard.press('Escape')
  // This browser stays signed in (its session was renewed); the old password no longer works.
  await bob.reload()
  await expect(bob.getByText('Signed in as bob')).toBeVisible()
  await bob.getByRole('button', { name: 'Sign out' }).click()
  await signIn(bob, 'bob', 'bob-password')
  await expect(bob.getByRole('alert')).toHaveText('Wrong username or password.')
  await signIn(bob, 'bob', 'bob-new-password')
  await expect(bob.getByText('Signed in as bob')).toBeVisible()
})
