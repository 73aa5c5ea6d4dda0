import { expect, lastAnswer, send, test, waitDone } from './fixtures.ts'
import { setSettings, shotEverywhere } from './helpers.ts'
import { scriptedServer } from './scripted.ts'

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
    })
  } finally {
    await server.close()
  }
})

