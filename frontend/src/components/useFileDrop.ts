import { useEffect, useState } from 'react'

const hasFiles = (e: DragEvent) => e.dataTransfer?.types.includes('Files') ?? false

/**
 * Files dragged anywhere over the page: true while they are over it; dropped, they go to
 * `onFiles` instead of the browser opening them in place of the app. Dragged text is left alone.
 */
export function useFileDrop(onFiles: (files: File[]) => void): boolean {
  const [over, setOver] = useState(false)
  useEffect(() => {
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return
      e.preventDefault()
      setOver(true)
    }
    // Leaving one element for another inside the page says nothing: only leaving the window does.
    const leave = (e: DragEvent) => {
      if (e.relatedTarget === null) setOver(false)
    }
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return
      e.preventDefault()
      setOver(false)
      const files = [...(e.dataTransfer?.files ?? [])]
      if (files.length) onFiles(files)
    }
    const end = () => setOver(false)
    window.addEventListener('dragenter', enter)
    // Without preventDefault on dragover, the browser would not let the page take the drop.
    window.addEventListener('dragover', enter)
    window.addEventListener('dragleave', leave)
    window.addEventListener('drop', drop)
    window.addEventListener('dragend', end)
    return () => {
      window.removeEventListener('dragenter', enter)
      window.removeEventListener('dragover', enter)
      window.removeEventListener('dragleave', leave)
      window.removeEventListener('drop', drop)
      window.removeEventListener('dragend', end)
    }
  }, [onFiles])
  return over
}

/** A paste that holds files and no text (a screenshot, a file copied in a file manager): those files. */
export function pastedFiles(data: DataTransfer | null): File[] {
  if (!data || data.types.includes('text/plain')) return []
  return [...data.files]
}
