/**
 * When a message was written, short: the time alone today, the day and time this year, else the
 * full date and time; in the page's language.
 */
export function messageTime(at: number, now: Date, locale: string): string {
  const when = new Date(at)
  const sameYear = when.getFullYear() === now.getFullYear()
  const today = sameYear && when.getMonth() === now.getMonth() && when.getDate() === now.getDate()
  return new Intl.DateTimeFormat(locale, {
    ...(today ? {} : sameYear ? { month: 'short', day: 'numeric' } : { dateStyle: 'medium' }),
    ...(today || sameYear ? { hour: '2-digit', minute: '2-digit' } : { timeStyle: 'short' }),
  }).format(when)
}

/** The full date and time, for the tooltip. */
export const fullTime = (at: number, locale: string): string =>
  new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'short' }).format(new Date(at))
