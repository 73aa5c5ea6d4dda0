import { memo, useMemo, type ComponentProps } from 'react'
import ReactMarkdown, { type Components, type ExtraProps, type Options } from 'react-markdown'
import rehypeKatex from 'rehype-katex'
import remarkGfm from 'remark-gfm'
import remarkMath from 'remark-math'
import 'katex/dist/katex.min.css'
import { toText } from 'hast-util-to-text'
import type { Root } from 'mdast'
import { visit } from 'unist-util-visit'
import { splitBlocks } from './blocks'
import { CodeBlock } from './CodeBlock'
import { normalizeMath } from './math'
import { closeIncomplete } from './streaming'
import { safeUrl } from './urls'
import { useT } from '../i18n'
import { CopyButton } from '../ui/CopyButton'
import { tableRows, toCsv, toMarkdownTable } from './tableText'
import './Markdown.css'

/**
 * Raw HTML in model output is shown as the text it is, never parsed into the page (there is no
 * rehype-raw). Without this, react-markdown would silently drop it, losing e.g. "use the <br> tag".
 */
function remarkHtmlAsText() {
  return (tree: Root) => {
    visit(tree, 'html', (node, index, parent) => {
      if (parent && index !== undefined) parent.children[index] = { type: 'text', value: node.value }
    })
  }
}

// Single dollars are left to normalizeMath, which does not take "$5 and $10" for math.
const remarkPlugins: Options['remarkPlugins'] = [remarkGfm, [remarkMath, { singleDollarTextMath: false }], remarkHtmlAsText]
// A formula KaTeX cannot read (or one still arriving) shows as its source, in the text colour.
const rehypePlugins: Options['rehypePlugins'] = [[rehypeKatex, { errorColor: 'inherit', strict: false }]]

function Link({ href, children }: ComponentProps<'a'> & ExtraProps) {
  if (!href) return <span className="md-link-text">{children}</span>
  return (
    <a href={href} target="_blank" rel="noopener noreferrer nofollow">
      {children}
    </a>
  )
}

/** Remote images are not loaded (a model can be talked into leaking the chat through an image URL). */
function Image({ src, alt }: ComponentProps<'img'> & ExtraProps) {
  const label = `🖼 ${alt || src || ''}`
  return typeof src === 'string' && src ? <Link href={src}>{label}</Link> : <span>{label}</span>
}

/** A code block inside another block (a list item, a quote): the same as a top-level one. */
function preFor(final: boolean) {
  return function Pre({ node }: ComponentProps<'pre'> & ExtraProps) {
    const code = node ? toText(node, { whitespace: 'pre' }) : ''
    const codeEl = node?.children.find((c) => c.type === 'element' && c.tagName === 'code')
    const classes = codeEl?.type === 'element' ? codeEl.properties.className : undefined
    const language = Array.isArray(classes)
      ? classes.map(String).find((c) => c.startsWith('language-'))?.slice('language-'.length)
      : undefined
    return <CodeBlock code={code} language={language} final={final} />
  }
}

/**
 * A table as wide as its words need (never broken mid-word), scrolling sideways in its own region,
 * which the keyboard can reach and scroll; above it, copy as Markdown or CSV.
 */
function Table({ children, node }: ComponentProps<'table'> & ExtraProps) {
  const t = useT()
  const rows = () => (node ? tableRows(node) : [])
  return (
    <div className="table-block">
      <div className="table-tools">
        <CopyButton text={() => toMarkdownTable(rows())} label={t('copyTableMarkdown')} caption="Markdown" />
        <CopyButton text={() => toCsv(rows())} label={t('copyTableCsv')} caption="CSV" />
      </div>
      <div className="table-wrap" tabIndex={0} role="region" aria-label={t('table')}>
        <table>{children}</table>
      </div>
    </div>
  )
}

/** A short cell (a name, a number, a date) stays on one line; a longer one wraps between words. */
const SHORT_CELL = 24
function Cell({ node, ...props }: ComponentProps<'td'> & ExtraProps) {
  const short = node ? toText(node).length <= SHORT_CELL : false
  return <td {...props} className={short ? 'short' : undefined} />
}

const components: Components = { a: Link, img: Image, pre: preFor(true), table: Table, td: Cell }
const growingComponents: Components = { ...components, pre: preFor(false) }

const Block = memo(function Block({
  source,
  code,
  language,
  growing,
}: {
  source: string
  code?: string
  language?: string
  growing: boolean
}) {
  if (code !== undefined) return <CodeBlock code={code} language={language} final={!growing} />
  return (
    <ReactMarkdown
      remarkPlugins={remarkPlugins}
      rehypePlugins={rehypePlugins}
      components={growing ? growingComponents : components}
      urlTransform={safeUrl}
    >
      {growing ? closeIncomplete(source) : normalizeMath(source)}
    </ReactMarkdown>
  )
})

/**
 * Renders markdown as memoised blocks: while streaming, finished blocks keep their rendered
 * output and only the last one is parsed again. The last block is closed while it grows, so a
 * half-written `**bold`, link or table header does not flash as raw syntax; an unterminated code
 * fence renders as a code block that grows. TeX math (`$…$`, `\(…\)`, `$$…$$`, `\[…\]`) is
 * rendered by KaTeX. A code block is rendered from the lexer's text, with no markdown parse, and
 * highlighted off the main thread once complete (see CodeBlock).
 */
export const Markdown = memo(function Markdown({ text, streaming }: { text: string; streaming: boolean }) {
  const blocks = useMemo(() => splitBlocks(text), [text])
  return (
    <div className="md">
      {blocks.map((block, i) => {
        const growing = streaming && i === blocks.length - 1
        return (
          <Block key={i} source={block.source} code={block.code?.text} language={block.code?.language} growing={growing} />
        )
      })}
    </div>
  )
})
