import type { Page } from '@playwright/test'
import { answers, composer, expect, expectAccessible, lastAnswer, send, shot, SHOTS, test, waitDone } from './fixtures.ts'
import { setSettings, shotEverywhere } from './helpers.ts'
import { scriptedServer } from './scripted.ts'
import { longTasksSince, recordLongTasks } from './perf.ts'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const WIDE_TABLE = [
  'Models compared:',
  '',
  '| Model | Parameters | Context length | Quantisation | Throughput | Licence | Released |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  '| Qwen3-0.6B | 600,000,000 | 131,072 | bfloat16 | 41 tokens/s | Apache-2.0 | 2025-04-29 |',
  '| Llama-3.2-1B-Instruct | 1,235,814,400 | 131,072 | Q4_K_M | 28 tokens/s | Llama 3.2 Community | 2024-09-25 |',
  '| "Tiny", quoted | 12 | 2,048 | float32 | 900 tokens/s | MIT | 2023-01-01 |',
  '',
  'That is all.',
].join('\n')

test('a wide table keeps its words whole, scrolls in its own focusable region, and copies as Markdown and CSV', async ({
  context,
  page,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'])
  await recordLongTasks(page)
  const server = await scriptedServer(WIDE_TABLE.match(/[\s\S]{1,12}/g) ?? [], 5)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    await send(page, 'Compare the models in a table.')
    const answer = lastAnswer(page)
    await waitDone(answer)
    const region = answer.getByRole('region', { name: 'Table' })
    await expect(region).toHaveAttribute('tabindex', '0')

    // No header or cell is broken inside a word: each header is one line, and no cell is narrower
    // than its longest word.
    const broken = (p: typeof page) =>
      p.evaluate(() => {
        const out: string[] = []
        for (const cell of document.querySelectorAll<HTMLElement>('.msg.assistant .table-wrap :is(th, td)')) {
          const range = document.createRange()
          range.selectNodeContents(cell)
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size
          if (cell.tagName === 'TH' && lines > 1) out.push(`header on ${lines} lines: ${cell.textContent}`)
          if (cell.scrollWidth > cell.clientWidth + 1) out.push(`overflowing: ${cell.textContent}`)
        }
        return out
      })
    for (const viewport of [
      { width: 1280, height: 800 },
      { width: 390, height: 844 },
    ]) {
      await page.setViewportSize(viewport)
      expect(await broken(page)).toEqual([])
      // The table is wider than the column: the region scrolls, the page does not.
      const widths = await region.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth, page: document.documentElement.scrollWidth }))
      expect(widths.scroll).toBeGreaterThan(widths.client)
      expect(widths.page).toBeLessThanOrEqual(viewport.width)
    }

    // The keyboard reaches the region and scrolls it.
    await region.focus()
    await page.keyboard.press('ArrowRight')
    await expect.poll(() => region.evaluate((el) => el.scrollLeft)).toBeGreaterThan(0)

    await answer.getByRole('button', { name: 'Copy table as Markdown' }).click()
    const md = await page.evaluate(() => navigator.clipboard.readText())
    expect(md.split('\n')[0]).toBe('| Model | Parameters | Context length | Quantisation | Throughput | Licence | Released |')
    expect(md.split('\n')).toHaveLength(5)
    await answer.getByRole('button', { name: 'Copy table as CSV' }).click()
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toContain(
      '"""Tiny"", quoted",12,"2,048",float32,900 tokens/s,MIT,2023-01-01',
    )
    await shotEverywhere(page, 'wide-table', async () => {
      await expect(lastAnswer(page).locator('table')).toBeVisible()
      if (page.viewportSize()?.width === 390) await expectAccessible(page, 'a table answer, phone')
    })

    // Opening the conversation from the list: the main thread is never held long.
    await page.setViewportSize({ width: 1280, height: 800 })
    await setSettings(page, { language: 'en', theme: 'light' })
    await page.getByRole('button', { name: 'New chat' }).click()
    const t0 = await page.evaluate(() => performance.now())
    await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: 'Compare the models in a table.', exact: true }).click()
    await expect(lastAnswer(page).locator('table')).toBeVisible()
    await page.waitForTimeout(300)
    const perf = await longTasksSince(page, t0)
    await writeFile(join(SHOTS, 'wide-table.json'), JSON.stringify(perf, null, 2))
    expect(perf.longestTaskMs).toBeLessThan(200)
  } finally {
    await server.close()
  }
})

test('two tabs in one conversation: one answers at a time, the other shows it live, can stop it, and never sticks', async ({
  context,
  page,
}) => {
  // About 3 s per answer, so each tab sees the other's answer while it streams.
  const server = await scriptedServer(Array.from({ length: 60 }, (_, i) => `w${i} `), 50)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    const other = await context.newPage()
    await other.goto('/')
    await send(page, 'First question')
    await waitDone(lastAnswer(page))
    await other.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: 'First question', exact: true }).click()
    await expect(answers(other)).toHaveCount(1)

    // Both send at once: one answers; the other keeps its message and says why.
    await composer(page).fill('From the first tab')
    await composer(other).fill('From the second tab')
    await Promise.all([composer(page).press('Enter'), composer(other).press('Enter')])
    const refused = (p: Page) => p.locator('.busy-elsewhere')
    await expect.poll(async () => (await refused(page).count()) + (await refused(other).count())).toBe(1)
    const [winner, loser] = (await refused(page).count()) ? [other, page] : [page, other]
    await expect(refused(loser)).toHaveText(/Another tab is writing an answer/)
    const kept = await composer(loser).inputValue()
    expect(kept).toMatch(/^From the (first|second) tab$/)
    // The live answer shows in the tab that did not send it.
    await expect(lastAnswer(loser)).toHaveAttribute('aria-busy', 'true')
    await expect(lastAnswer(loser)).toContainText('w1')
    for (const p of [winner, loser]) {
      await waitDone(lastAnswer(p), 15_000)
      await expect(p.locator('article.msg.assistant[aria-busy="true"]')).toHaveCount(0)
      await expect(p.getByRole('button', { name: 'Stop' })).toHaveCount(0)
      await expect(p.locator('article.msg.user')).toHaveText(['First question', (await composer(winner).inputValue()) || /From the/])
      await expect(lastAnswer(p)).toContainText('w59')
    }
    await expect(refused(loser)).toHaveCount(0)

    // Now the other tab sends; Stop in the first tab stops it in both.
    await composer(loser).press('Enter')
    await expect(lastAnswer(winner)).toHaveAttribute('aria-busy', 'true')
    await winner.getByRole('button', { name: 'Stop' }).click()
    for (const p of [winner, loser]) {
      await waitDone(lastAnswer(p), 5_000)
      await expect(lastAnswer(p).locator('.badge')).toHaveText('Stopped')
    }

    // The tab writing an answer closes: the other shows it interrupted, not streaming forever.
    await send(winner, 'One more')
    await expect(lastAnswer(loser)).toHaveAttribute('aria-busy', 'true')
    // Some of it shown first: an answer cut before any text has nothing to continue.
    await expect(lastAnswer(loser).locator('.md')).toHaveText(/\S/)
    await winner.close()
    await waitDone(lastAnswer(loser), 10_000)
    await expect(lastAnswer(loser).locator('.badge')).toHaveText('Interrupted')
    await expect(composer(loser)).toBeEnabled()
    // Every answer cut short offers Regenerate and Continue, not only the last one.
    for (const cut of [answers(loser).nth(-2), lastAnswer(loser)]) {
      await expect(cut.getByRole('button', { name: 'Regenerate' })).toBeVisible()
      await expect(cut.getByRole('button', { name: 'Continue', exact: true })).toBeVisible()
    }
    await lastAnswer(loser).getByRole('button', { name: 'Continue', exact: true }).click()
    // This server does not offer continue_final_message: Continue is asked for in a new turn.
    await expect(loser.locator('article.msg.user').last()).toHaveText('Continue')
    await waitDone(lastAnswer(loser), 15_000)
  } finally {
    await server.close()
  }
})

test('files dropped anywhere on the page, or pasted into the message box, are attached; the page stays', async ({ page }) => {
  await page.goto('/')
  const url = page.url()
  const files = (name: string, text: string) =>
    page.evaluateHandle(
      ([n, t]) => {
        const data = new DataTransfer()
        data.items.add(new File([t], n, { type: 'text/markdown' }))
        return data
      },
      [name, text] as const,
    )
  const drag = async () => {
    await page.locator('.topbar').dispatchEvent('dragenter', { dataTransfer: await files('notes.md', '# Notes') })
    await expect(page.getByText('Drop files to attach them')).toBeVisible()
  }
  await drag()
  await shotEverywhere(page, 'drop-overlay', async () => {
    await page.locator('.main').dispatchEvent('dragenter', { dataTransfer: await files('notes.md', '# Notes') })
    await expect(page.locator('.drop-overlay')).toBeVisible()
  })
  await setSettings(page, { language: 'en', theme: 'light' })
  await page.setViewportSize({ width: 1280, height: 800 })
  await drag()
  // Dropped on the conversation list, far from the message box.
  await page.locator('nav').dispatchEvent('drop', { dataTransfer: await files('notes.md', '# Notes\n\nMeeting at noon.') })
  await expect(page.locator('.drop-overlay')).toHaveCount(0)
  const chips = page.getByRole('list', { name: 'Attached files' }).getByRole('listitem')
  await expect(chips).toHaveText([/notes\.md/])
  expect(page.url()).toBe(url)

  // A file pasted into the box (no text with it) is attached too; pasted text is just text.
  const paste = async (data: Awaited<ReturnType<typeof files>>) =>
    composer(page).evaluate(
      (el, d) => el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: d, bubbles: true, cancelable: true })),
      data,
    )
  await paste(await files('todo.md', '- milk'))
  await expect(chips).toHaveText([/notes\.md/, /todo\.md/])
  await paste(await page.evaluateHandle(() => {
    const data = new DataTransfer()
    data.setData('text/plain', 'just words')
    return data
  }))
  await expect(chips).toHaveCount(2)
})

test('offline: the error says so, keeps what was written, and follows the network coming back', async ({ context, page }) => {
  await page.goto('/')
  await expect(page.getByRole('combobox', { name: 'Model' })).toBeEnabled()
  await context.setOffline(true)
  await send(page, 'Are you there?')
  const notice = lastAnswer(page).getByRole('alert')
  await expect(notice).toContainText('You are offline')
  await expect(notice).not.toContainText('Failed to fetch')
  await expect(page.locator('article.msg.user')).toHaveText('Are you there?')
  await context.setOffline(false)
  await expect(notice).toContainText('Can’t reach the server')
  await notice.getByRole('button', { name: 'Retry' }).click()
  await waitDone(lastAnswer(page))
  await expect(lastAnswer(page).getByRole('alert')).toHaveCount(0)
})

test('a long code block keeps its language and copy button in view; Stop before the first token leaves no empty answer', async ({
  page,
}) => {
  const code = Array.from({ length: 300 }, (_, i) => `print(${i})`).join('\n')
  const server = await scriptedServer(['Here:\n\n```python\n', code, '\n```\n\nDone.'], 5)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    await send(page, 'Print 300 numbers.')
    await waitDone(lastAnswer(page))
    // Scrolled to the middle of the block: its head sticks to the top of the conversation.
    await page.locator('.messages').evaluate((el) => (el.scrollTop = el.scrollHeight / 2))
    const head = lastAnswer(page).locator('.code-head')
    await expect(head.getByRole('button', { name: 'Copy code' })).toBeInViewport()
    await expect(head.locator('.code-lang')).toHaveText('python')
    const [headTop, listTop] = await Promise.all([head.evaluate((el) => el.getBoundingClientRect().top), page.locator('.messages').evaluate((el) => el.getBoundingClientRect().top)])
    expect(Math.abs(headTop - listTop)).toBeLessThan(2)
    await shot(page, 'code-sticky-head')
  } finally {
    await server.close()
  }
  // The first token would come after 5 s: Esc before it removes the empty answer, the question stays.
  const slow = await scriptedServer(['Late.'], 5000)
  try {
    await setSettings(page, { apiBaseUrl: slow.baseUrl, apiKey: '' })
    await send(page, 'Never mind.')
    await expect(lastAnswer(page)).toHaveAttribute('aria-busy', 'true')
    await page.keyboard.press('Escape')
    await expect(page.locator('article.msg.user').last()).toHaveText('Never mind.')
    await expect(answers(page)).toHaveCount(1)
    await expect(page.getByText('Stopped')).toHaveCount(0)
  } finally {
    await slow.close()
  }
})

test.describe('on a phone', () => {
  test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true })

  test('Enter makes a new line and the button sends; the header shows the title and the model', async ({ page }) => {
    const server = await scriptedServer(['Fine.'], 5)
    try {
      await page.goto('/')
      await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
      await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
      await composer(page).fill('A question about the weather in the mountains')
      await composer(page).press('Enter')
      await expect(composer(page)).toHaveValue('A question about the weather in the mountains\n')
      await expect(page.locator('article.msg')).toHaveCount(0)
      await page.getByRole('button', { name: 'Send' }).click()
      await waitDone(lastAnswer(page))
      // The title is not cut to a few letters: it wraps onto a second line, and the picker fits.
      const heading = page.locator('.conv-heading')
      await expect(heading).toHaveText('A question about the weather in the mountains')
      expect(await heading.evaluate((el) => el.scrollHeight <= el.clientHeight + 1)).toBe(true)
      await expect(page.getByRole('combobox', { name: 'Model' })).toBeInViewport({ ratio: 1 })
      await shot(page, 'phone-header')
    } finally {
      await server.close()
    }
  })
})

test('sidebar: delete with Undo, pin, folders and archive; message times; keyboard shortcuts', async ({ context, page }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'])
  const server = await scriptedServer(['Sure.'], 5)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    const list = page.getByRole('navigation', { name: 'Conversations' })
    const section = (heading: string) => list.locator('section').filter({ has: page.getByRole('heading', { name: heading, exact: true }) })
    for (const q of ['Alpha question', 'Beta question']) {
      await page.getByRole('button', { name: 'New chat' }).click()
      await send(page, q)
      await waitDone(lastAnswer(page))
    }
    // An answer shows when it was written (today: the time alone), the full date on hover.
    const time = lastAnswer(page).locator('time.msg-time')
    await expect(time).toHaveText(/^\d{2}:\d{2}( [AP]M)?$/)
    await expect(time).toHaveAttribute('title', /\d{4}/)

    // Delete: gone at once, with Undo for a few seconds; Undo brings it back, and a reload keeps it.
    await list.getByRole('button', { name: 'Delete: Alpha question' }).click()
    await expect(list.getByRole('button', { name: 'Alpha question', exact: true })).toHaveCount(0)
    const toast = page.getByRole('status').filter({ hasText: 'Deleted “Alpha question”' })
    await toast.getByRole('button', { name: 'Undo' }).click()
    await expect(list.getByRole('button', { name: 'Alpha question', exact: true })).toBeVisible()
    await page.reload()
    await expect(list.getByRole('button', { name: 'Alpha question', exact: true })).toBeVisible()

    const menu = async (title: string, item: string) => {
      await list.getByRole('button', { name: `More actions: ${title}` }).click()
      await list.getByRole('button', { name: item, exact: true }).click()
    }
    await menu('Beta question', 'Pin')
    await expect(section('Pinned').getByRole('button', { name: 'Beta question', exact: true })).toBeVisible()
    await menu('Alpha question', 'Move to folder…')
    const folder = list.getByRole('combobox', { name: 'Folder for Alpha question' })
    await folder.fill('Work')
    await folder.press('Enter')
    await expect(section('Work').getByRole('button', { name: 'Alpha question', exact: true })).toBeVisible()
    await expect(list.getByRole('heading')).toHaveText(['Pinned', 'Work'])
    await shot(page, 'sidebar-pinned-folder')

    await menu('Alpha question', 'Archive')
    await expect(list.getByRole('button', { name: 'Alpha question', exact: true })).toHaveCount(0)
    await expect(page.getByRole('status').filter({ hasText: 'Archived “Alpha question”' })).toBeVisible()
    await shot(page, 'sidebar-undo-toast')
    await list.getByRole('button', { name: 'Archived (1)' }).click()
    await expect(section('Archived').getByRole('button', { name: 'Alpha question', exact: true })).toBeVisible()

    // Share: the conversation as a Markdown file.
    const downloaded = page.waitForEvent('download')
    await menu('Beta question', 'Download as Markdown')
    const file = await downloaded
    expect(file.suggestedFilename()).toBe('Beta-question.md')
    expect(await readFile(await file.path(), 'utf8')).toBe('# Beta question\n\n### You\n\nBeta question\n\n### Assistant (scripted)\n\nSure.\n')

    // Keyboard shortcuts: the ? sheet lists them; each does what it says.
    await page.locator('.messages').click()
    await page.keyboard.press('?')
    const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' })
    await expect(sheet.getByRole('row')).toHaveCount(6)
    await shot(page, 'shortcuts-sheet')
    await expectAccessible(page, 'the shortcuts sheet over a pinned chat in a folder')
    await page.keyboard.press('Escape')
    await expect(sheet).toBeHidden()
    await page.keyboard.press('Control+k')
    await expect(page.getByRole('searchbox', { name: 'Search chats' })).toBeFocused()
    await page.keyboard.press('Shift+Escape')
    await expect(composer(page)).toBeFocused()
    await page.keyboard.press('Control+Shift+C')
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('Sure.')
    await page.keyboard.press('Control+Shift+O')
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('New conversation')
  } finally {
    await server.close()
  }
})
