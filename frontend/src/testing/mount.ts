import { act, type ReactNode } from 'react'
import { createRoot, type Root } from 'react-dom/client'
import { afterEach, beforeEach } from 'vitest'

export interface MountPoint {
  readonly container: HTMLDivElement
  render: (node: ReactNode) => void
}

/** A fresh element in the document for each test of the calling file, unmounted after it. */
export function mountPoint(): MountPoint {
  let root: Root
  let container: HTMLDivElement
  beforeEach(() => {
    container = document.createElement('div')
    document.body.append(container)
    root = createRoot(container)
  })
  afterEach(() => {
    act(() => root.unmount())
    container.remove()
  })
  return {
    get container() {
      return container
    },
    render: (node) => act(() => root.render(node)),
  }
}
