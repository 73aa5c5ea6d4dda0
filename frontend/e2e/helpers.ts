import type { Page } from '@playwright/test'

/** Changes saved settings (language, theme, API base URL…) as a returning user would have them, and reloads. */
export async function setSettings(page: Page, patch: Record<string, unknown>): Promise<void> {
  await page.evaluate((p) => {
    const saved = JSON.parse(localStorage.getItem('localchat.settings') ?? '{"state":{},"version":0}') as {
      state: Record<string, unknown>
    }
    Object.assign(saved.state, p)
    localStorage.setItem('localchat.settings', JSON.stringify(saved))
  }, patch)
  await page.reload()
}
