/** Lines per piece of a code block: a piece is laid out, or replaced by its highlighted copy, on its own. */
export const LINES_PER_PIECE = 200

/** Where code is cut into pieces: after every LINES_PER_PIECE-th line break, and at its end. */
export function pieceEnds(code: string): number[] {
  const ends: number[] = []
  let lines = 0
  for (let nl = code.indexOf('\n'); nl >= 0; nl = code.indexOf('\n', nl + 1)) {
    if (++lines % LINES_PER_PIECE === 0) ends.push(nl + 1)
  }
  if (code.length > (ends.at(-1) ?? 0)) ends.push(code.length)
  return ends
}
