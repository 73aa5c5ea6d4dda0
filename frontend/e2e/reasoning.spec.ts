import { expect, lastAnswer, shot, test } from './fixtures.ts'
import { shotEverywhere } from './helpers.ts'

/**
 * Reasoning shown apart from the answer, collapsed once the answer is there: streamed separately
 * (`reasoning_content`, kept in the message's `reasoning`) or inline as `<think>…</think>`.
 * The small model does not reason, so the answers come in through Import.
 */
test('reasoning shows as a collapsible "Thinking" section above the answer', async ({ page }) => {
  await page.goto('/')
  const conversation = (id: string, answer: Record<string, string>) => ({
    id,
    title: id,
    messages: [
      { role: 'user', content: 'What is the capital of France?' },
      { role: 'assistant', status: 'done', ...answer },
    ],
  })
  await page.locator('input[type="file"]').setInputFiles({
    name: 'reasoning.json',
    mimeType: 'application/json',
    buffer: Buffer.from(
      JSON.stringify([
        conversation('Streamed apart', { reasoning: 'France is in **Europe**.', content: 'Paris.' }),
        conversation('Think tags', { content: '<think>\nThe user asks about France.\n</think>\n\nIt is **Paris**.' }),
      ]),
    ),
  })
  const sidebar = page.getByRole('navigation', { name: 'Conversations' })
  for (const [title, thought, answer] of [
    ['Streamed apart', 'France is in Europe.', 'Paris.'],
    ['Think tags', 'The user asks about France.', 'It is Paris.'],
  ] as const) {
    await sidebar.getByRole('button', { name: title, exact: true }).click()
    const reasoning = lastAnswer(page).locator('details.reasoning')
    await expect(reasoning.locator('summary')).toHaveText('Thinking')
    await expect(reasoning).not.toHaveAttribute('open')
    await expect(lastAnswer(page).locator(':scope > .md')).toHaveText(answer)
    await expect(lastAnswer(page)).not.toContainText('<think>')
    await reasoning.locator('summary').click()
    await expect(reasoning.locator('.md')).toHaveText(thought)
  }
  await shot(page, 'reasoning')
  await shotEverywhere(page, 'reasoning', async () => {
    const reasoning = lastAnswer(page).locator('details.reasoning')
    await reasoning.locator('summary').click()
    await expect(reasoning.locator('.md')).toBeVisible()
  })
})
