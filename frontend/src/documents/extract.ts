import type { Attachment } from '../types'

/** Why a file cannot be attached; `reason` is an i18n key, `vars` its values. */
export class AttachError extends Error {
  readonly reason: 'attachImage' | 'attachBinary' | 'attachTooBig' | 'attachEmpty' | 'attachUnreadable'
  readonly vars: Record<string, string | number>
  constructor(reason: AttachError['reason'], vars: Record<string, string | number>) {
    super(reason)
    this.reason = reason
    this.vars = vars
  }
}

export const MAX_FILE_BYTES = 20 * 1024 * 1024
// An image travels base64 in the request (a third larger), under the 8 MiB Nginx takes.
export const MAX_IMAGE_BYTES = 4 * 1024 * 1024

export type FileKind = 'pdf' | 'image' | 'text'

/** What a file is, by its type and then its name (browsers give code files no type). */
export function fileKind(name: string, type: string): FileKind {
  if (type === 'application/pdf' || /\.pdf$/i.test(name)) return 'pdf'
  if (type.startsWith('image/')) return 'image'
  return 'text'
}

/** Text files have no NUL bytes and decode as UTF-8; anything else is refused rather than garbled. */
export function decodeText(bytes: Uint8Array): string | null {
  if (bytes.subarray(0, 8192).includes(0)) return null
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '')
  } catch {
    return null
  }
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

function base64(data: ArrayBuffer): string {
  const bytes = new Uint8Array(data)
  let binary = ''
  // In slices: String.fromCharCode takes its bytes as arguments, and arguments are limited.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

/**
 * Reads an attached file into its text (an image, for a model that takes them, into a data URL). Images are refused unless the model takes them
 * (`imagesOk`), with the model's name for the message.
 */
export async function readAttachment(file: File, id: string, model: { name: string; imagesOk: boolean }): Promise<Attachment> {
  const kind = fileKind(file.name, file.type)
  if (kind === 'image' && !model.imagesOk) throw new AttachError('attachImage', { name: file.name, model: model.name })
  const max = kind === 'image' ? MAX_IMAGE_BYTES : MAX_FILE_BYTES
  if (file.size > max) throw new AttachError('attachTooBig', { name: file.name, size: formatSize(file.size), max: formatSize(max) })
  const data = await file.arrayBuffer()
  if (kind === 'image') {
    return { id, name: file.name, size: file.size, kind, text: '', dataUrl: `data:${file.type};base64,${base64(data)}` }
  }
  let text: string | null
  if (kind === 'pdf') {
    const { pdfText } = await import('./pdf')
    try {
      text = await pdfText(data)
    } catch (e) {
      throw new AttachError('attachUnreadable', { name: file.name, reason: e instanceof Error ? e.message : String(e) })
    }
  } else {
    text = decodeText(new Uint8Array(data))
    if (text === null) throw new AttachError('attachBinary', { name: file.name })
  }
  if (!text.trim()) throw new AttachError('attachEmpty', { name: file.name })
  return { id, name: file.name, size: file.size, kind, text }
}
