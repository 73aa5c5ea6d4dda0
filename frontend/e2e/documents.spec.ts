import type { Page } from '@playwright/test'
import { composer, expect, isChatPost, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'
import { setSettings, shotEverywhere } from './helpers.ts'
import { makePdf } from './pdf.ts'
import { scriptedServer } from './scripted.ts'

const TOPICS = [
  'Sourdough bread rises because wild yeast and lactic bacteria ferment the flour; a starter is fed daily with flour and water.',
  'A four-stroke petrol engine runs intake, compression, power and exhaust strokes; the spark plug fires near the top of compression.',
  'Arctic terns migrate from the Arctic to the Antarctic and back every year, the longest migration of any bird.',
  'Volcanic eruptions are explosive when the magma is rich in silica and gas; basaltic lava flows more gently.',
  'In chess the Sicilian Defence answers 1.e4 with 1...c5, fighting for the centre from the side.',
  'Value added tax is charged at every stage of production, and each business deducts the tax it paid on its inputs.',
  'Photosynthesis in the chloroplast turns carbon dioxide and water into glucose, using the energy of sunlight.',
  'The Roman aqueducts carried water by gravity over long distances, with a gentle and constant slope.',
  'A binary search halves the sorted range at every step, so it finds an item among a million in about twenty steps.',
  'Coffee beans are roasted at around two hundred degrees, when sugars caramelise and the beans crack.',
  'Glaciers carve U-shaped valleys as the ice grinds the rock beneath it and carries the debris away.',
  'The violin has four strings tuned in fifths, G, D, A and E, and is played with a bow strung with horsehair.',
]
const NEEDLE =
  'The lighthouse on Koral Island was built in 1872 by the engineer Mara Vell. Its lamp can be seen forty kilometres out at sea, and it was automated in 1961.'

/** About 32,000 characters: chapters on unrelated subjects, one of them about the lighthouse. */
function longNotes(): string {
  const chapters: string[] = []
  for (let i = 0; i < 56; i++) {
    const topic = TOPICS[i % TOPICS.length] ?? ''
    const body = i === 29 ? NEEDLE : topic
    chapters.push(`Chapter ${i + 1}\n\n${body} ${topic.replace(/^[^ ]+ /, 'Also, ')} ${'Notes were taken with care. '.repeat(12)}`)
  }
  return chapters.join('\n\n')
}

// A 1x1 red PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
)

const PDF_LINES = [
  'Zephyr project summary',
  'The Zephyr project budget is 42 million euros.',
  'The board approved it in March 2024.',
]

async function attach(page: Page, files: { name: string; mimeType: string; buffer: Buffer }[]): Promise<void> {
  const chooser = page.waitForEvent('filechooser')
  await page.getByRole('button', { name: 'Attach files (text, markdown, code, PDF)' }).click()
  await (await chooser).setFiles(files)
}

test('a PDF and a large text file: small goes whole, large is searched with /v1/embeddings, the answer shows its sources', async ({
  page,
}) => {
  test.setTimeout(240_000)
  await page.goto('/')
  const notes = longNotes()
  expect(notes.length).toBeGreaterThan(30_000)
  await attach(page, [
    { name: 'zephyr.pdf', mimeType: 'application/pdf', buffer: makePdf(PDF_LINES) },
    { name: 'island-notes.txt', mimeType: 'text/plain', buffer: Buffer.from(notes) },
  ])
  const chips = page.getByRole('list', { name: 'Attached files' })
  await expect(chips.getByRole('listitem')).toHaveCount(2)
  await expect(chips).toContainText('zephyr.pdf')
  await expect(chips).toContainText('island-notes.txt')
  await expect(chips).toContainText(/\d+(\.\d)? KB/)

  // Records the waiting texts shown while the files are searched and then read.
  await page.evaluate(() => {
    const seen: string[] = ((window as unknown as { __waits: string[] }).__waits = [])
    new MutationObserver(() => {
      const text = document.querySelector('.msg.assistant .thinking')?.textContent ?? ''
      if (text && text !== seen.at(-1)) seen.push(text)
    }).observe(document.body, { subtree: true, childList: true, characterData: true })
  })
  const embeddings = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/embeddings'))
  const chat = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'Who built the lighthouse on Koral Island, and when?')
  // The chips left the composer with the message.
  await expect(composer(page)).toHaveValue('')
  const embedBody = (await embeddings).postDataJSON() as { model: string; input: string[] }
  expect(embedBody.model).toBe('all-MiniLM-L6-v2')
  expect(embedBody.input[0]).toBe('Who built the lighthouse on Koral Island, and when?')

  const body = (await chat).postDataJSON() as { messages: { role: string; content: string }[] }
  const prompt = body.messages.at(-1)?.content ?? ''
  // The PDF's text, whole, as passage [1]; then the passages of the notes closest to the question.
  expect(prompt).toContain('[1] zephyr.pdf\n"""\nZephyr project summary')
  expect(prompt).toContain('The Zephyr project budget is 42 million euros.')
  expect(prompt).toMatch(/\[2\] island-notes\.txt, passage \d+ of \d+/)
  expect(prompt).toContain('built in 1872 by the engineer Mara Vell')
  // Only the closest passages: far less than the whole file.
  expect(prompt.length).toBeLessThan(notes.length / 4)
  expect(prompt.endsWith('Question: Who built the lighthouse on Koral Island, and when?')).toBe(true)

  const answer = lastAnswer(page)
  await waitDone(answer, 180_000)
  const waits = await page.evaluate(() => (window as unknown as { __waits: string[] }).__waits)
  const searching = waits.indexOf('Finding the passages of your files that fit the question…')
  const reading = waits.findIndex((w) => /^Reading ~[\d,]+ tokens…$/.test(w))
  expect(searching, waits.join(' | ')).toBeGreaterThanOrEqual(0)
  expect(reading, waits.join(' | ')).toBeGreaterThan(searching)
  const sources = answer.getByRole('region', { name: /Sources cited|Sources \(matched|Passages given to the model/ })
  await expect(sources).toBeVisible()
  await expect(sources).toContainText(/zephyr\.pdf|island-notes\.txt/)
  // Expanding a source shows its passage.
  const needle = sources.locator('details', { hasText: 'island-notes.txt' }).filter({ hasText: /passage \d+ of/ })
  if ((await needle.count()) > 0) {
    await needle.first().locator('summary').click()
    await expect(sources.locator('details[open] blockquote').first()).toBeVisible()
  }

  // The files stay with the message, and the sources with the answer, after a reload.
  await page.reload()
  const userMessage = page.locator('article.msg.user').last()
  await expect(userMessage.getByRole('list', { name: 'Attached files' }).getByRole('listitem')).toHaveCount(2)
  await expect(lastAnswer(page).locator('.citations')).toBeVisible()

  // The same answer in English and Chinese, light and dark, desktop and phone.
  await shotEverywhere(page, 'documents', async () => {
    const citations = lastAnswer(page).locator('.citations')
    await expect(citations).toBeVisible()
    await citations.locator('summary').first().click()
    await citations.scrollIntoViewIfNeeded()
  })
})

test('an image is refused with the reason: the model reads text only', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('SmolLM2-135M-Instruct')
  await attach(page, [
    { name: 'photo.png', mimeType: 'image/png', buffer: PNG },
    { name: 'archive.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0]) },
  ])
  const problems = page.locator('.attach-problems')
  await expect(problems).toContainText('photo.png is an image, and SmolLM2-135M-Instruct reads text only')
  await expect(problems).toContainText('“vision”')
  await expect(problems).toContainText('archive.bin is not a text file')
  await expect(page.getByRole('list', { name: 'Attached files' })).toHaveCount(0)
  await shot(page, 'documents-image-refused')
})

test('a model whose capabilities list vision gets the image, as an image part', async ({ page }) => {
  const server = await scriptedServer(['A red dot.'], 20, ['chat', 'vision'])
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    await attach(page, [{ name: 'dot.png', mimeType: 'image/png', buffer: PNG }])
    await expect(page.getByRole('list', { name: 'Attached files' }).getByRole('listitem')).toHaveText(/dot\.png\s*\d+ B/)
    await send(page, 'What is in the picture?')
    await waitDone(lastAnswer(page))
    const body = server.requests.at(-1) as { messages: { role: string; content: unknown }[] }
    expect(body.messages.at(-1)).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'What is in the picture?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } },
      ],
    })
    await expect(page.locator('article.msg.user img.attachment-thumb')).toBeVisible()
  } finally {
    await server.close()
  }
})

test('a small markdown file goes into the prompt whole, and a chip can be removed before sending', async ({ page }) => {
  await page.goto('/')
  await attach(page, [
    { name: 'recipe.md', mimeType: 'text/markdown', buffer: Buffer.from('# Pancakes\n\nMix 2 eggs, 300 ml milk and 150 g flour.') },
    { name: 'main.rs', mimeType: '', buffer: Buffer.from('fn main() {\n    println!("hi");\n}\n') },
  ])
  const chips = page.getByRole('list', { name: 'Attached files' })
  await expect(chips.getByRole('listitem')).toHaveCount(2)
  await chips.getByRole('button', { name: 'Remove main.rs' }).click()
  await expect(chips.getByRole('listitem')).toHaveCount(1)

  const chat = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  let embeddingCalls = 0
  page.on('request', (r) => {
    if (r.url().endsWith('/v1/embeddings')) embeddingCalls++
  })
  await send(page, 'How much flour?')
  const body = (await chat).postDataJSON() as { messages: { content: string }[] }
  const prompt = body.messages.at(-1)?.content ?? ''
  expect(prompt).toContain('[1] recipe.md\n"""\n# Pancakes\n\nMix 2 eggs, 300 ml milk and 150 g flour.\n"""')
  expect(prompt).not.toContain('main.rs')
  await waitDone(lastAnswer(page))
  expect(embeddingCalls).toBe(0)
  await expect(page.locator('article.msg.user').getByRole('listitem')).toHaveText(/recipe\.md\s*\d+ B/)
})
