/// <reference lib="webworker" />
// Highlights code off the main thread: a 10,000-line block takes highlight.js a good part of a
// second, which in the page would freeze scrolling and typing.
import { highlightPieces } from './highlight'
import type { HighlightRequest, HighlightReply } from './highlighter'

self.onmessage = (e: MessageEvent<HighlightRequest>) => {
  const { id, code, language } = e.data
  const reply: HighlightReply = { id, result: highlightPieces(code, language) }
  self.postMessage(reply)
}
