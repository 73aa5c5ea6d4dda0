import type { Page } from '@playwright/test'
import { shot } from './fixtures.ts'

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

/**
 * Screenshots `name-{en,zh-CN}-{light,dark}-{desktop,phone}`: each language and theme as saved
 * settings (so after a reload), at a desktop and a phone size; `prepare` then readies the view.
 */
export async function shotEverywhere(page: Page, name: string, prepare: () => Promise<void>): Promise<void> {
  for (const language of ['en', 'zh'] as const) {
    for (const theme of ['light', 'dark'] as const) {
      for (const [device, viewport] of [
        ['desktop', { width: 1280, height: 800 }],
        ['phone', { width: 390, height: 844 }],
      ] as const) {
        await page.setViewportSize(viewport)
        await setSettings(page, { language, theme })
        await prepare()
        await shot(page, `${name}-${language === 'zh' ? 'zh-CN' : 'en'}-${theme}-${device}`)
      }
    }
  }
}
