/** What an action did, or why the server refused it. */
export interface Note {
  text: string
  error: boolean
}

/** A note under a dialog's heading: a refusal is an alert, a success a status (AdminDialog.css). */
export function NoteLine({ note }: { note: Note | null }) {
  if (!note) return null
  return (
    <p className={note.error ? 'admin-message' : 'admin-message done'} role={note.error ? 'alert' : 'status'}>
      {note.text}
    </p>
  )
}
