import { composer, expect, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'

test.describe('a browser set to Chinese', () => {
  test.use({ locale: 'zh-CN' })

  test('opens in Simplified Chinese by default', async ({ page }) => {
    await page.goto('/')
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN')
    await expect(page.getByRole('button', { name: '新对话' })).toBeVisible()
    await expect(page.getByRole('textbox', { name: '消息', exact: true })).toHaveAttribute(
      'placeholder',
      '给本地模型发消息…',
    )
  })
})

test('switch to Chinese in Settings and chat in Chinese; dark theme at phone width', async ({ page }) => {
  await page.goto('/')
  await expect(composer(page)).toHaveAttribute('placeholder', 'Message the local model…')
  await page.getByRole('button', { name: 'Settings', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Settings' })
  await dialog.getByRole('combobox', { name: 'Language' }).selectOption('zh')
  await dialog.getByRole('combobox', { name: 'Theme' }).selectOption('dark')
  await shot(page, 'settings-dialog')
  await dialog.getByRole('button', { name: 'Save' }).click()

  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN')
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  const input = page.getByRole('textbox', { name: '消息', exact: true })
  await expect(input).toHaveAttribute('placeholder', '给本地模型发消息…')

  await page.setViewportSize({ width: 390, height: 844 })
  await input.fill('你好！请用中文介绍一下你自己。')
  await input.press('Enter')
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).locator('.md')).not.toBeEmpty()
  await expect(lastAnswer(page).locator('.metrics')).toContainText('词元/秒')
  await expect(lastAnswer(page).locator('.metrics')).toContainText('首词元')
  await shot(page, 'chat-dark-phone-zh')

  // The conversation list is a drawer on a phone.
  await page.getByRole('button', { name: '显示或隐藏对话列表' }).click()
  await expect(page.getByRole('navigation', { name: '对话列表' })).toBeVisible()
  await shot(page, 'sidebar-drawer-phone-zh')

  // The choice is kept.
  await page.reload()
  await expect(page.getByRole('textbox', { name: '消息', exact: true })).toBeVisible()
})

test('the system theme is followed; light at phone width', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto('/')
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  const dark = await bg()
  await shot(page, 'welcome-dark-phone')
  await page.emulateMedia({ colorScheme: 'light' })
  expect(await bg()).not.toBe(dark)
  expect(await bg()).toBe('rgb(255, 255, 255)')
  await send(page, 'Give me a markdown table of two fruits and their colours, then a Python hello world.')
  await waitDone(lastAnswer(page))
  await shot(page, 'chat-light-phone')
})
