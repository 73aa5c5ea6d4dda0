// Debian's Chromium: Playwright never downloads a browser here. The flags are shared with
// deploy/tests/browser_stream.mjs through chromium.json.
import chromium from './chromium.json' with { type: 'json' }

export const CHROMIUM = process.env.CHROMIUM_PATH ?? chromium.executablePath
export const CHROMIUM_ARGS = chromium.args
