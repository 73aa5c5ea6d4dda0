/** Random id; crypto.randomUUID is missing on plain-http origins (a LAN Nginx), getRandomValues is not. */
export function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
