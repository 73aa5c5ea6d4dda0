import type { ButtonHTMLAttributes, ReactNode } from 'react'

type Props = Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'aria-label' | 'title' | 'type'> & {
  /** Its accessible name and its tooltip: an icon alone says nothing to a screen reader. */
  label: string
  small?: boolean
  children: ReactNode
}

/** A button that shows only an icon. */
export function IconButton({ label, small, className, children, ...rest }: Props) {
  const classes = ['icon-btn', small ? 'small' : '', className ?? ''].filter(Boolean).join(' ')
  return (
    <button type="button" className={classes} aria-label={label} title={label} {...rest}>
      {children}
    </button>
  )
}
