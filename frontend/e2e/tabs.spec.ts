import { expect, lastAnswer, send, test, waitDone } from './fixtures.ts'

test('two tabs stay in step: conversations, answers, renames, deletions and settings', async ({ context, page }) => {
  // Two answers from the real model; minutes when the machine is busy.
  test.setTimeout(480_000)
  await page.goto('/')
  const other = await context.newPage()
  await other.goto('/')
  const sidebar = (p: typeof page) => p.getByRole('navigation', { name: 'Conversations' })

  // An answer in one tab shows in the other, as it is written.
  await send(page, 'Name three rivers.')
  await waitDone(lastAnswer(page), 200_000)
  const answer = await lastAnswer(page).locator('.md').textContent()
  await sidebar(other).getByRole('button', { name: 'Name three rivers.', exact: true }).click()
  await expect(lastAnswer(other).locator('.md')).toHaveText(answer ?? '')

  // A rename in the other tab, while this one asks again: both are kept, in both tabs.
  await send(page, 'And three lakes?')
  await sidebar(other).getByRole('button', { name: 'Rename: Name three rivers.' }).click()
  const rename = other.getByRole('textbox', { name: 'Rename conversation' })
  await rename.fill('Water')
  await rename.press('Enter')
  await waitDone(lastAnswer(page), 200_000)
  for (const p of [page, other]) {
    await expect(sidebar(p).getByRole('button', { name: 'Water', exact: true })).toBeVisible()
    await expect(p.locator('article.msg.user')).toHaveText(['Name three rivers.', 'And three lakes?'])
    await expect(p.locator('article.msg.assistant[aria-busy="false"]')).toHaveCount(2)
  }
  await page.reload()
  await expect(sidebar(page).getByRole('button', { name: 'Water', exact: true })).toBeVisible()
  await expect(page.locator('article.msg.user')).toHaveText(['Name three rivers.', 'And three lakes?'])

  // Settings: the language chosen in one tab applies in the other.
  await other.getByRole('button', { name: 'Settings', exact: true }).click()
  await other.getByRole('dialog').getByLabel('Language').selectOption('zh')
  await other.getByRole('dialog').getByRole('button', { name: 'Save' }).click()
  await expect(page.getByRole('button', { name: '新对话' })).toBeVisible()

  // A deletion in one tab removes the conversation from the other.
  const list = (p: typeof page) => p.getByRole('navigation', { name: '对话列表' })
  await list(page).getByRole('button', { name: '删除: Water' }).click()
  await expect(list(other).getByRole('button', { name: 'Water', exact: true })).toHaveCount(0)
  await expect(list(other)).toContainText('还没有对话')
})
