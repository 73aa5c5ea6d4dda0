/**
 * Schedules `render` after new text has arrived: at most once per frame however many tokens came,
 * and the next one no sooner than twice the last one's cost, so however expensive the growing
 * block gets, two thirds of the main thread stay free for scrolling and typing.
 */
export function renderThrottle(render: () => void) {
  let pending = false
  let nextAt = 0
  const flush = () => {
    if (!pending) return
    pending = false
    const start = performance.now()
    render()
    const end = performance.now()
    nextAt = end + 2 * (end - start)
  }
  return {
    request: () => {
      if (pending) return
      pending = true
      const wait = nextAt - performance.now()
      if (wait > 0) {
        setTimeout(flush, wait)
        return
      }
      // requestAnimationFrame does not run in a hidden tab; the timer then keeps the text (and
      // its saved copy) current.
      requestAnimationFrame(flush)
      setTimeout(flush, 250)
    },
    /** The final update carries the text; a frame or timer still queued has nothing left to do. */
    cancel: () => {
      pending = false
    },
  }
}
