import { useCallback, useState } from 'react'
import { AttachError, readAttachment } from '../documents/extract'
import type { Translate } from '../i18n'
import { newId } from '../lib/id'
import type { Attachment } from '../types'

/** The files attached to the message being written, and why any were refused. */
export function useAttachments(t: Translate, model: { name: string; imagesOk: boolean }) {
  const [attachments, setAttachments] = useState<Attachment[]>([])
  const [problems, setProblems] = useState<string[]>([])
  const [reading, setReading] = useState(0)

  // Stable while the model stays the same: the page-wide drop listener is set up once.
  const { name, imagesOk } = model
  const add = useCallback(async (files: Iterable<File>) => {
    const list = [...files]
    setProblems([])
    setReading((n) => n + list.length)
    await Promise.all(
      list.map(async (file) => {
        try {
          const attachment = await readAttachment(file, newId(), { name, imagesOk })
          setAttachments((all) => [...all, attachment])
        } catch (e) {
          const text = e instanceof AttachError ? t(e.reason, e.vars) : t('attachUnreadable', { name: file.name, reason: String(e) })
          setProblems((all) => [...all, text])
        } finally {
          setReading((n) => n - 1)
        }
      }),
    )
  }, [t, name, imagesOk])

  return {
    attachments,
    problems,
    reading: reading > 0,
    add,
    remove: (id: string) => setAttachments((all) => all.filter((a) => a.id !== id)),
    clear: () => {
      setAttachments([])
      setProblems([])
    },
  }
}
