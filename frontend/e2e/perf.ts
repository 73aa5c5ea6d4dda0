import type { Page } from '@playwright/test'

export interface LongFrame {
  start: number
  duration: number
  scripts: { invoker: string; duration: number }[]
}

declare global {
  interface Window {
    __longTasks: { start: number; duration: number }[]
    __longFrames: LongFrame[]
  }
}

/**
 * Records, from the page's first script on, Long Tasks (main-thread tasks over 50 ms) and Long
 * Animation Frames, which say which script made a frame long (Chromium 123+).
 */
export async function recordLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    window.__longTasks = []
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration })
    }).observe({ type: 'longtask', buffered: true })
    window.__longFrames = []
    new PerformanceObserver((list) => {
      for (const e of list.getEntries() as (PerformanceEntry & { scripts?: { invoker: string; duration: number }[] })[]) {
        const scripts = (e.scripts ?? []).map((x) => ({ invoker: x.invoker, duration: Math.round(x.duration) }))
        window.__longFrames.push({ start: e.startTime, duration: Math.round(e.duration), scripts })
      }
    }).observe({ type: 'long-animation-frame', buffered: true })
  })
}

/** The long tasks since `t0` (the page's performance.now()), and the five longest frames. */
export async function longTasksSince(page: Page, t0: number) {
  return page.evaluate((start) => {
    const tasks = window.__longTasks.filter((t) => t.start >= start)
    return {
      longTasks: tasks.length,
      longestTaskMs: Math.round(Math.max(0, ...tasks.map((t) => t.duration))),
      longTaskTotalMs: Math.round(tasks.reduce((sum, t) => sum + t.duration, 0)),
      slowestFrames: window.__longFrames
        .filter((f) => f.start >= start)
        .sort((a, b) => b.duration - a.duration)
        .slice(0, 5)
        .map((f) => ({ duration: f.duration, scripts: f.scripts })),
    }
  }, t0)
}
