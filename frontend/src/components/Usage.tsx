import type { ReactNode } from 'react'
import type { UsageReport, UsageRow } from '../api/account'
import { useT } from '../i18n'

/** Tokens per day as bars (SVG: no charting library for one small chart). */
export function UsageChart({ daily, label }: { daily: UsageReport['daily']; label: string }) {
  const width = 600
  const height = 120
  const max = Math.max(1, ...daily.map((d) => d.total_tokens))
  const bar = width / Math.max(1, daily.length)
  return (
    <figure className="usage-chart">
      <svg viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label={label}>
        {daily.map((d, i) => {
          const h = (d.total_tokens / max) * height
          return (
            <rect key={d.day} x={i * bar + 1} y={height - h} width={Math.max(1, bar - 2)} height={h}>
              <title>{`${d.day}: ${d.total_tokens}`}</title>
            </rect>
          )
        })}
        <line x1="0" x2={width} y1={height} y2={height} />
        <text x="0" y={height + 13}>
          {daily[0]?.day}
        </text>
        <text x={width} y={height + 13} textAnchor="end">
          {daily.at(-1)?.day}
        </text>
        <text x="2" y="11">
          {max}
        </text>
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  )
}

/** A table that scrolls sideways where the screen is narrower (a phone); `label` names it. */
export function TableScroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-scroll" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  )
}

/**
 * A usage report's rows, newest day first: `who` names the column that tells requests apart
 * (the admin's: user and key; one's own: the key, or the page).
 */
export function UsageTable({
  rows,
  label,
  who,
  whoLabel,
}: {
  rows: UsageRow[]
  label: string
  who: (row: UsageRow) => string
  whoLabel: string
}) {
  const t = useT()
  if (rows.length === 0) return <p className="muted">{t('noUsage')}</p>
  const sorted = [...rows].sort((a, b) => b.day.localeCompare(a.day))
  return (
    <TableScroll label={label}>
      <table className="admin-table usage-table">
      <thead>
        <tr>
          <th>{t('day')}</th>
          <th>{whoLabel}</th>
          <th>{t('model')}</th>
          <th>{t('requests')}</th>
          <th>{t('promptTokens')}</th>
          <th>{t('completionTokens')}</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((r) => (
          <tr key={`${r.day}/${r.user_id}/${r.api_key_id}/${r.model}`}>
            <td>{r.day}</td>
            <td>{who(r)}</td>
            <td>{r.model}</td>
            <td>{r.requests}</td>
            <td>{r.prompt_tokens}</td>
            <td>{r.completion_tokens}</td>
          </tr>
        ))}
      </tbody>
      </table>
    </TableScroll>
  )
}
