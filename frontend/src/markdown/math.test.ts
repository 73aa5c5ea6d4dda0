import { describe, expect, it } from 'vitest'
import { normalizeMath } from './math'

describe('normalizeMath', () => {
  it('rewrites \\(…\\), \\[…\\] and $…$ into the dollars remark-math reads', () => {
    expect(normalizeMath('Area \\(a^2\\) and \\(b\\,c\\).')).toBe('Area $$a^2$$ and $$b\\,c$$.')
    expect(normalizeMath('So $x_1 + y$ holds.')).toBe('So $$x_1 + y$$ holds.')
    expect(normalizeMath('\\[\n\\int_0^1 x\\,dx\n\\]')).toBe('$$\n\\int_0^1 x\\,dx\n$$')
  })

  it('makes a formula alone on its line display math, keeping list indentation', () => {
    expect(normalizeMath('Thus:\n\\[E = mc^2\\]\nso.')).toBe('Thus:\n$$\nE = mc^2\n$$\nso.')
    expect(normalizeMath('- item\n  $$x$$')).toBe('- item\n  $$\n  x\n  $$')
  })

  it('leaves prices, escaped dollars and code alone', () => {
    for (const text of [
      'It costs $5 and $10.',
      'Between $ 1 and 2 $.',
      'A \\$ sign and $x\\$.',
      'Run `echo $HOME $PATH` and `\\(a\\)`.',
      '```sh\necho $a $b \\(x\\)\n```',
      '- list\n  ```\n  $x$\n  ```',
    ])
      expect(normalizeMath(text)).toBe(text)
  })
})
