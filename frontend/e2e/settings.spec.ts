import type { Page } from '@playwright/test'
import { expect, isChatPost, send, test } from './fixtures.ts'

/** Sends a message and returns the request body the page posted (the answer is not awaited). */
async function sentBody(page: Page, text: string): Promise<Record<string, unknown>> {
  const request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, text)
  return (await request).postDataJSON() as Record<string, unknown>
}

async function setParams(page: Page, maxTokens: string, seed: string, asDefault: boolean): Promise<void> {
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' })
  await dialog.getByLabel('Max tokens').fill(maxTokens)
  await dialog.getByLabel('Seed').fill(seed)
  await dialog.getByLabel('Also start new chats with these parameters').setChecked(asDefault)
  await dialog.getByRole('button', { name: 'Save' }).click()
  await expect(dialog).toBeHidden()
}

test("one chat's parameters stay in that chat; the defaults change only when saved as default", async ({ page }) => {
  await page.goto('/')
  await setParams(page, '12', '7', false)
  expect(await sentBody(page, 'Name a colour.')).toMatchObject({ max_tokens: 12, seed: 7 })

  await page.getByRole('button', { name: 'New chat' }).click()
  const fresh = await sentBody(page, 'Name a fruit.')
  expect(fresh).toMatchObject({ max_tokens: 40 })
  expect(fresh).not.toHaveProperty('seed')

  await setParams(page, '16', '', true)
  await page.getByRole('button', { name: 'New chat' }).click()
  expect(await sentBody(page, 'Name a tree.')).toMatchObject({ max_tokens: 16 })
  // A reload keeps the saved default.
  await page.reload()
  await page.getByRole('button', { name: 'New chat' }).click()
  expect(await sentBody(page, 'Name a bird.')).toMatchObject({ max_tokens: 16 })
})
