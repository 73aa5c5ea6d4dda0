import { createStore } from 'zustand/vanilla'

/**
 * One answer at a time per conversation across this page's tabs: the tab writing an answer holds
 * the conversation's Web Lock (navigator.locks; the browser frees it when the tab closes or
 * crashes). Without Web Locks (old browsers, unit tests) every tab may answer, as before.
 */
const lockName = (convId: string) => `localchat.answer.${convId}`
// Absent outside browsers (unit tests in Node).
const locks = (): LockManager | undefined => globalThis.navigator?.locks

/** The conversation where a send was refused because another tab is answering there. */
export const answerElsewhere = createStore<{ convId: string | null }>()(() => ({ convId: null }))

/**
 * Runs `task` holding the conversation's lock. Resolves true once the lock is held (the task
 * runs on), false at once when another tab (or this one) is answering there: the task never runs.
 */
export function withAnswerLock(convId: string, task: () => Promise<void>): Promise<boolean> {
  const manager = locks()
  if (!manager) {
    void task()
    return Promise.resolve(true)
  }
  return new Promise((resolve) => {
    void manager.request(lockName(convId), { ifAvailable: true }, async (lock) => {
      resolve(lock !== null)
      if (lock) await task()
    })
  })
}

/** How long the answering tab's last write has to arrive once it lets go of the lock. */
const LAST_WRITE_MS = 1500

/**
 * Calls `gone` once no tab is answering in the conversation (the one that was has finished or
 * was closed) and none started again meanwhile (then it waits for that answer too): an answer
 * still marked as streaming then is one that nobody will finish.
 */
export function whenNoAnswer(convId: string, gone: () => void): void {
  const manager = locks()
  if (!manager) return
  // Granted once the holder lets go; returning at once hands it straight back.
  void manager.request(lockName(convId), async () => {
    setTimeout(
      () =>
        void manager.request(lockName(convId), { ifAvailable: true }, async (lock) => {
          if (lock) gone()
          else whenNoAnswer(convId, gone)
        }),
      LAST_WRITE_MS,
    )
  })
}
