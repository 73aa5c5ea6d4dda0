import type { Page } from '@playwright/test'
import { composer, expect, expectAccessible, isChatPost, lastAnswer, send, shot, test, waitDone } from './fixtures.ts'
import { setSettings } from './helpers.ts'
import { scriptedServer } from './scripted.ts'

declare global {
  interface Window {
    __pipeParagraphs: string[]
    __announced: string[]
  }
}

/** Records, as the answer streams, every paragraph showing a pipe and every announcement made. */
async function watchAnswer(page: Page): Promise<void> {
  await page.evaluate(() => {
    window.__pipeParagraphs = []
    window.__announced = []
    const announcer = document.querySelector('[data-testid="announcer"]')
    new MutationObserver(() => {
      for (const p of document.querySelectorAll('.msg.assistant .md p')) {
        if (p.textContent?.includes('|')) window.__pipeParagraphs.push(p.textContent)
      }
      const said = announcer?.textContent ?? ''
      if (said && said !== window.__announced.at(-1)) window.__announced.push(said)
    }).observe(document.body, { subtree: true, childList: true, characterData: true })
  })
}

test('scripted stream: a table never shows raw pipes, tokens/s show live, the finished answer is announced once', async ({
  page,
}) => {
  const text = 'Here are the planets:\n| Planet | Size |\n| --- | --- |\n| Mars | small |\n| Earth | medium |\n| Jupiter | huge |\n\nThat is all.'
  // A few characters per chunk, so every stage of the table's first lines is rendered.
  const pieces = text.match(/[\s\S]{1,3}/g) ?? []
  const server = await scriptedServer(pieces, 60)
  try {
    await page.goto('/')
    await setSettings(page, { apiBaseUrl: server.baseUrl, apiKey: '' })
    await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('scripted')
    await watchAnswer(page)
    await send(page, 'A table of planets, please.')
    const answer = lastAnswer(page)
    // While it streams: a live rate, and nothing announced yet.
    await expect(answer.locator('.live-rate')).toHaveText(/^[\d.]+ tokens\/s$/)
    expect(await page.evaluate(() => window.__announced)).toEqual([])
    await waitDone(answer)
    await expect(answer.locator('table tbody tr')).toHaveCount(3)
    await expect(answer.locator('.live-rate')).toHaveCount(0)
    await expect(answer.locator('.metrics')).toHaveText(new RegExp(`${pieces.length} tokens.*tokens/s`))
    expect(await page.evaluate(() => window.__pipeParagraphs)).toEqual([])
    await page.waitForTimeout(300)
    const announced = await page.evaluate(() => window.__announced)
    expect(announced).toHaveLength(1)
    expect(announced[0]).toMatch(/^Answer finished: Here are the planets:/)
    await expect(page.getByTestId('announcer')).toHaveAttribute('aria-live', 'polite')
  } finally {
    await server.close()
  }
})

test('a 30,000-character message: the wait says how much is being read, and the message is collapsed', async ({ page }) => {
  await page.goto('/')
  // About 7,600 tokens: it fits the model's 8,192, so the server really reads it.
  const long = Array.from({ length: 690 }, () => 'The quick brown fox jumps over the lazy dog.').join('\n')
  expect(long.length).toBeGreaterThan(30_000)
  await composer(page).fill(long)
  await composer(page).press('Enter')
  const waiting = lastAnswer(page).locator('.thinking')
  await expect(waiting).toHaveText(/Reading ~[\d,]+ tokens…/)
  const estimate = Number((await waiting.textContent())?.match(/~([\d,]+)/)?.[1]?.replace(/,/g, ''))
  expect(estimate).toBeGreaterThan(7000)
  await shot(page, 'long-prompt-reading')
  // The model would read for a minute or two: stop it; the message is what is checked next.
  await page.keyboard.press('Escape')
  // Stopped before its first token: no empty answer is left behind.
  await expect(page.locator('article.msg.assistant')).toHaveCount(0)

  const bubble = page.locator('article.msg.user .bubble')
  const collapsed = (await bubble.boundingBox())?.height ?? 0
  expect(collapsed).toBeLessThan(420)
  await bubble.getByRole('button', { name: 'Show more' }).click()
  expect((await bubble.boundingBox())?.height ?? 0).toBeGreaterThan(5000)
  await bubble.getByRole('button', { name: 'Show less' }).click()
  expect((await bubble.boundingBox())?.height ?? 0).toBe(collapsed)
})

test('over the context: the server’s numbers are shown', async ({ page }) => {
  await page.goto('/')
  await send(page, 'hello '.repeat(9000))
  const notice = lastAnswer(page).getByRole('alert')
  await expect(notice.locator('.error-numbers')).toHaveText(
    /^The model holds [\d,]+ tokens; this request needs [\d,]+ \([\d,]+ in the conversation \+ 40 for the answer\)\.$/,
  )
  await shot(page, 'context-numbers')
})

test('Enter that confirms an IME candidate never sends, in Chrome’s order and in Safari’s', async ({ page }) => {
  await page.goto('/')
  const input = composer(page)
  await input.fill('你好')
  const enter = (init: { isComposing: boolean; keyCode: number }) =>
    input.evaluate(
      (el, i) => el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true, ...i })),
      init,
    )
  // Chrome/Firefox: keydown while composing.
  await input.dispatchEvent('compositionstart')
  await enter({ isComposing: true, keyCode: 229 })
  await input.dispatchEvent('compositionend')
  // Safari: compositionend first, then the keydown, no longer composing but still keyCode 229.
  await enter({ isComposing: false, keyCode: 229 })
  await page.waitForTimeout(200)
  await expect(page.locator('article.msg')).toHaveCount(0)
  await expect(input).toHaveValue('你好')
  await input.press('Enter')
  await expect(page.locator('article.msg.user')).toHaveText('你好')
  await waitDone(lastAnswer(page))
})

test('a skip link takes the keyboard straight to the message box', async ({ page }) => {
  // Phone width: nothing is focused on load (the keyboard would cover the chat), so Tab starts at the top.
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto('/')
  await expect(composer(page)).not.toBeFocused()
  await page.keyboard.press('Tab')
  const skip = page.getByRole('link', { name: 'Skip to message box' })
  await expect(skip).toBeFocused()
  await expect(skip).toBeInViewport()
  await page.keyboard.press('Enter')
  await expect(composer(page)).toBeFocused()
})

/** Visible controls smaller than 44 px either way (a checkbox counts by its label). */
function smallTargets(page: Page) {
  return page.evaluate(() => {
    const small: string[] = []
    for (const el of document.querySelectorAll<HTMLElement>('button, a[href], input, select, textarea, summary')) {
      const target = el instanceof HTMLInputElement && el.type === 'checkbox' ? (el.closest('label') ?? el) : el
      const box = target.getBoundingClientRect()
      const style = getComputedStyle(target)
      if (box.width === 0 || box.height === 0 || style.visibility === 'hidden' || el.closest('.visually-hidden')) continue
      if (el.classList.contains('skip-link')) continue
      if (box.bottom < 0 || box.top > innerHeight || box.right < 0 || box.left > innerWidth) continue
      if (box.width < 44 || box.height < 44) small.push(`${Math.round(box.width)}x${Math.round(box.height)} ${target.outerHTML.slice(0, 90)}`)
    }
    return small
  })
}

test('phone: every control is at least 44 px to the finger', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto('/')
  expect(await smallTargets(page)).toEqual([])
  await send(page, 'Hi')
  await waitDone(lastAnswer(page))
  expect(await smallTargets(page)).toEqual([])
  await page.getByRole('button', { name: 'Show or hide conversations' }).click()
  await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeVisible()
  expect(await smallTargets(page)).toEqual([])
  await shot(page, 'touch-targets-drawer-phone')
  // A tap beside the drawer closes it.
  await page.mouse.click(380, 400)
  await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeHidden()
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  await expect(page.getByRole('dialog', { name: 'Conversation settings' })).toBeVisible()
  expect(await smallTargets(page)).toEqual([])
  await shot(page, 'touch-targets-settings-phone')
  await page.getByRole('dialog', { name: 'Conversation settings' }).getByRole('button', { name: 'Cancel' }).click()
  await page.getByRole('button', { name: 'Show or hide conversations' }).click()
  await page.getByRole('button', { name: 'Settings', exact: true }).click()
  await expect(page.getByRole('dialog', { name: 'Settings' })).toBeVisible()
  expect(await smallTargets(page)).toEqual([])
})

test('importing the same file twice does not duplicate chats', async ({ page }) => {
  await page.goto('/')
  const file = {
    name: 'chats.json',
    mimeType: 'application/json',
    buffer: Buffer.from(
      JSON.stringify({
        format: 'localchat.conversations',
        version: 1,
        conversations: [
          {
            id: 'imp-1',
            title: 'Imported once',
            createdAt: 1,
            updatedAt: 2,
            systemPrompt: '',
            params: { temperature: 0.7, top_p: 0.95, max_tokens: 40, seed: null },
            model: '',
            messages: [
              { id: 'u', role: 'user', content: 'Hello', createdAt: 1 },
              { id: 'a', role: 'assistant', content: 'Hi there', createdAt: 2, status: 'done' },
            ],
          },
        ],
      }),
    ),
  }
  const nav = page.getByRole('navigation', { name: 'Conversations' })
  await page.locator('input[type=file]').setInputFiles(file)
  await expect(page.getByText('Imported 1 conversations')).toBeVisible()
  await page.locator('input[type=file]').setInputFiles(file)
  await expect(page.getByText('Imported 0 conversations; 1 already here were skipped')).toBeVisible()
  await expect(nav.getByRole('button', { name: 'Imported once', exact: true })).toHaveCount(1)
  await page.reload()
  await expect(nav.getByRole('button', { name: 'Imported once', exact: true })).toHaveCount(1)
})

test('settings on the welcome screen leave no empty chat; a saved preset fills another chat’s system prompt', async ({
  page,
}) => {
  await page.goto('/')
  const nav = page.getByRole('navigation', { name: 'Conversations' })
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' })
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  await dialog.getByRole('button', { name: 'Cancel' }).click()
  await expect(nav).toContainText('No conversations yet')

  await page.getByRole('button', { name: 'Conversation settings' }).click()
  await dialog.getByLabel('System prompt').fill('You are a pirate. Answer like one.')
  await dialog.getByRole('textbox', { name: 'Preset name' }).fill('Pirate')
  await dialog.getByRole('button', { name: 'Add preset' }).click()
  await expect(dialog.getByRole('combobox', { name: 'Preset' })).toHaveValue('Pirate')
  await dialog.getByRole('button', { name: 'Save', exact: true }).click()
  // Saved for the chat to come, which does not exist yet.
  await expect(nav).toContainText('No conversations yet')
  await expect(page.getByRole('heading', { name: 'What can I help with?' })).toBeVisible()

  let request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'Hello!')
  let sent = (await request).postDataJSON() as { messages: { role: string; content: string }[] }
  expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are a pirate. Answer like one.' })
  await waitDone(lastAnswer(page))

  await page.getByRole('button', { name: 'New chat' }).click()
  await page.getByRole('button', { name: 'Conversation settings' }).click()
  await expect(dialog.getByLabel('System prompt')).toHaveValue('')
  await dialog.getByRole('combobox', { name: 'Preset' }).selectOption('Pirate')
  await expect(dialog.getByLabel('System prompt')).toHaveValue('You are a pirate. Answer like one.')
  await shot(page, 'preset-picker')
  await dialog.getByRole('button', { name: 'Save', exact: true }).click()
  request = page.waitForRequest((r) => isChatPost(r.url(), r.method()))
  await send(page, 'Where is the treasure?')
  sent = (await request).postDataJSON() as { messages: { role: string; content: string }[] }
  expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are a pirate. Answer like one.' })
  await waitDone(lastAnswer(page))
  await expect(nav.getByRole('listitem')).toHaveCount(2)
})

test('installable: a manifest with icons, and a service worker that opens the page offline', async ({ page, context }) => {
  await page.goto('/')
  const manifestHref = await page.locator('link[rel="manifest"]').getAttribute('href')
  const manifest = (await (await page.request.get(new URL(manifestHref ?? '', page.url()).href)).json()) as {
    display: string
    icons: { sizes: string }[]
  }
  expect(manifest.display).toBe('standalone')
  expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']))
  // `ready` gives the worker once it is active, which may still be finishing its activation.
  await expect.poll(() => page.evaluate(async () => (await navigator.serviceWorker.ready).active?.state)).toBe('activated')

  await context.setOffline(true)
  try {
    await page.reload()
    await expect(composer(page)).toBeVisible()
    await expect(page.getByRole('heading', { name: 'What can I help with?' })).toBeVisible()
    await shot(page, 'offline-shell')
  } finally {
    await context.setOffline(false)
  }
})

/** The Web Speech API's recognizer as the page sees it; the real one needs its vendor's servers,
 *  unreachable here. It hears `window.__voiceSays`, or fails with `window.__voiceError`. */
function fakeRecognizer(): void {
  type Heard = [string, boolean][]
  const w = window as unknown as {
    SpeechRecognition: unknown
    webkitSpeechRecognition: unknown
    __voiceSays?: Heard[]
    __voiceError?: string
  }
  w.SpeechRecognition = w.webkitSpeechRecognition = class {
    lang = ''
    onresult: ((e: unknown) => void) | null = null
    onerror: ((e: { error: string }) => void) | null = null
    onend: (() => void) | null = null
    start() {
      if (w.__voiceError) {
        setTimeout(() => {
          this.onerror?.({ error: w.__voiceError ?? '' })
          this.onend?.()
        }, 20)
        return
      }
      ;(w.__voiceSays ?? []).forEach((parts, i) =>
        setTimeout(
          () => this.onresult?.({ results: parts.map(([text, isFinal]) => Object.assign([{ transcript: text }], { isFinal })) }),
          50 * (i + 1),
        ),
      )
    }
    stop() {
      setTimeout(() => this.onend?.(), 10)
    }
  }
}

test('voice input dictates after the text in the box, says why it failed, and is absent without a recognizer', async ({
  page,
  context,
}) => {
  await page.addInitScript(fakeRecognizer)
  await page.goto('/')
  await page.evaluate(() => {
    ;(window as unknown as { __voiceSays: unknown }).__voiceSays = [
      [['what is', false]],
      [['what is the capital', true], [' of France', false]],
    ]
  })
  await composer(page).fill('Question:')
  await page.getByRole('button', { name: 'Voice input' }).click()
  const stopVoice = page.getByRole('button', { name: 'Stop voice input' })
  await expect(stopVoice).toHaveAttribute('aria-pressed', 'true')
  await expect(composer(page)).toHaveValue('Question: what is the capital of France')
  // Read-only while listening, so a revised guess never overwrites typing.
  await expect(composer(page)).not.toBeEditable()
  await shot(page, 'voice-input')
  await expectAccessible(page, 'the welcome screen, dictating')
  await stopVoice.click()
  await expect(page.getByRole('button', { name: 'Voice input' })).toHaveAttribute('aria-pressed', 'false')
  await expect(composer(page)).toBeEditable()

  await page.evaluate(() => ((window as unknown as { __voiceError: string }).__voiceError = 'not-allowed'))
  await page.getByRole('button', { name: 'Voice input' }).click()
  await expect(page.getByRole('alert').filter({ hasText: 'The microphone is blocked for this page' })).toBeVisible()
  await expect(composer(page)).toHaveValue('Question: what is the capital of France')

  const without = await context.newPage()
  await without.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>
    delete w.SpeechRecognition
    delete w.webkitSpeechRecognition
  })
  await without.goto('/')
  await expect(composer(without)).toBeVisible()
  await expect(without.getByRole('button', { name: 'Voice input' })).toHaveCount(0)

  // Dictating in Chinese, dark: for the screenshot.
  await setSettings(page, { language: 'zh', theme: 'dark' })
  await page.evaluate(() => ((window as unknown as { __voiceSays: unknown }).__voiceSays = [[['法国的首都是哪里', false]]]))
  await page.getByRole('button', { name: '语音输入' }).click()
  await expect(page.locator('#composer-input')).toHaveValue(/法国的首都是哪里$/)
  await shot(page, 'voice-input-zh-CN-dark')
})
