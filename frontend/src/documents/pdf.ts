// pdf.js and its worker are loaded only when a PDF is attached; Vite bundles both (no CDN).
// ?worker&url: bundled as a .js worker file (Nginx's stock types know no .mjs).
import workerUrl from 'pdfjs-dist/build/pdf.worker.min.mjs?worker&url'

/** The text of every page of a PDF, pages apart by a blank line. */
export async function pdfText(data: ArrayBuffer): Promise<string> {
  const pdfjs = await import('pdfjs-dist')
  pdfjs.GlobalWorkerOptions.workerSrc = workerUrl
  // No eval: the page's Content-Security-Policy allows scripts from this origin only.
  const doc = await pdfjs.getDocument({ data: new Uint8Array(data), isEvalSupported: false }).promise
  try {
    const pages: string[] = []
    for (let i = 1; i <= doc.numPages; i++) {
      const content = await (await doc.getPage(i)).getTextContent()
      let page = ''
      for (const item of content.items) {
        if ('str' in item) page += item.str + (item.hasEOL ? '\n' : '')
      }
      pages.push(page.trim())
    }
    return pages.filter(Boolean).join('\n\n')
  } finally {
    void doc.destroy()
  }
}
