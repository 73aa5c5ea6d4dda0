import type { SavedPrompt } from '../store/settings'

/**
 * What filters the prompt library while the message box holds `/` and a single line after it
 * (the start of a prompt's name); null otherwise, so a message that only mentions a path is left alone.
 */
export function slashQuery(text: string): string | null {
  return text.startsWith('/') && !text.includes('\n') ? text.slice(1) : null
}

/** The saved prompts whose name holds `query` (any case), those it starts first, then by name. */
export function matchPrompts(prompts: SavedPrompt[], query: string): SavedPrompt[] {
  const q = query.trim().toLowerCase()
  const rank = (p: SavedPrompt) => (p.name.toLowerCase().startsWith(q) ? 0 : 1)
  return prompts
    .filter((p) => p.name.toLowerCase().includes(q))
    .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
}
