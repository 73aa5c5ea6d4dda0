// Models write TeX between `\(…\)`, `\[…\]`, `$…$` and `$$…$$`. remark-math reads only dollars,
// and in markdown `\(` and `\,` are escapes that lose their backslash, so the other delimiters
// are rewritten into dollars before parsing. remark-math's own single-dollar rule would also
// take "$5 and $10" for math, so single dollars are rewritten here by Pandoc's rule instead:
// no space just inside either dollar, no digit right after the closing one.

/** A fence line, indented too (a fence inside a list item). */
const FENCE = /^\s*(`{3,}|~{3,})/
const CODE_SPAN = /(`+)[\s\S]*?[^`]\1(?!`)|(`+)/g
const DISPLAY = /\\\[([\s\S]+?)\\\]/g
const INLINE = /\\\(([\s\S]+?)\\\)/g
const SINGLE_DOLLAR = /(?<![\\$])\$(?![\s$])((?:[^$\n\\]|\\.)+?)(?<![\s\\])\$(?![$\d])/g
/** `$$x$$` alone on its line: display math, which remark-math reads only as fenced lines. */
const DISPLAY_LINE = /^([ \t]*)\$\$([^\n$]+)\$\$[ \t]*$/gm

function rewrite(text: string): string {
  return text
    .replace(DISPLAY, (_, tex: string) => `$$${tex}$$`)
    .replace(INLINE, (_, tex: string) => `$$${tex}$$`)
    .replace(SINGLE_DOLLAR, (_, tex: string) => `$$${tex}$$`)
    .replace(DISPLAY_LINE, (_, indent: string, tex: string) => `${indent}$$\n${indent}${tex.trim()}\n${indent}$$`)
}

/** Rewrites a block's math delimiters into the dollars remark-math reads; code is left alone. */
export function normalizeMath(block: string): string {
  if (!/[$\\]/.test(block)) return block
  const out: string[] = []
  let prose: string[] = []
  let fence: string | null = null
  const flush = () => {
    if (!prose.length) return
    const text = prose.join('\n')
    let last = 0
    let rewritten = ''
    for (const span of text.matchAll(CODE_SPAN)) {
      rewritten += rewrite(text.slice(last, span.index)) + span[0]
      last = span.index + span[0].length
    }
    out.push(rewritten + rewrite(text.slice(last)))
    prose = []
  }
  for (const line of block.split('\n')) {
    const marker = FENCE.exec(line)?.[1]
    if (fence === null && marker) {
      flush()
      fence = marker
      out.push(line)
    } else if (fence !== null) {
      if (marker?.startsWith(fence) && line.trim() === marker) fence = null
      out.push(line)
    } else prose.push(line)
  }
  flush()
  return out.join('\n')
}
