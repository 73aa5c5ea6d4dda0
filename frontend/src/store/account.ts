import { clear, keys } from 'idb-keyval'
import { createStore } from 'zustand/vanilla'
import { AccountApi, serverRoot, type AuthMode, type User } from '../api/account'
import { chatStore } from './conversations'
import { localMeta, openBaseDb, startServerSync, type ServerSync, type SyncState } from './serverSync'
import { settingsStore } from './settings'

/** Who is signed in (AUTH=password or header) and how their conversations' sync is going. */
export interface AccountState {
  /** False until the server said its mode. */
  ready: boolean
  auth: AuthMode
  user: User | null
  signupOpen: boolean
  sync: SyncState | null
  /** Conversations of this device's history offered for import into the account (0: none). */
  offer: number
  adminOpen: boolean
  /** The signed-in user's own dialog: API keys, password, usage. */
  accountOpen: boolean
}

export const accountStore = createStore<AccountState>()(() => ({
  ready: false,
  auth: 'none',
  user: null,
  signupOpen: false,
  sync: null,
  offer: 0,
  adminOpen: false,
  accountOpen: false,
}))

export function accountApi(): AccountApi {
  return new AccountApi(serverRoot(settingsStore.getState().apiBaseUrl))
}

const POLL_MS = 30_000

let sync: ServerSync | null = null
/** Lets go of the sync lock: another tab may then sync. */
let release: (() => void) | null = null
let generation = 0
/** The account this browser last synced, until it signs out. */
const LAST_USER_KEY = 'localchat.sync.lastUser'

const whenLoaded = () =>
  new Promise<void>((resolve) => {
    if (chatStore.getState().loaded) return resolve()
    const unsubscribe = chatStore.subscribe((s) => {
      if (!s.loaded) return
      unsubscribe()
      resolve()
    })
  })

/**
 * Syncs the user's conversations in one tab of this browser at a time (a Web Lock, freed when
 * the tab closes): the others follow it through IndexedDB (store/persist.ts), as they follow
 * each other's writes. With AUTH=none nothing is synced: the one local user's history stays in
 * this browser, as before accounts.
 */
async function startSync(user: User): Promise<void> {
  if (sync || release) return
  const mine = ++generation
  await whenLoaded()
  // Another account's session ended here without a sign-out (expired, revoked): its history
  // goes before this one's sync starts, or it would be shown and offered for import here.
  const last = Number(localStorage.getItem(LAST_USER_KEY) ?? user.id)
  if (last !== user.id) await forget(last)
  localStorage.setItem(LAST_USER_KEY, String(user.id))
  const run = async () => {
    if (mine !== generation) return
    sync = await startServerSync(chatStore, accountApi(), openBaseDb(user.id), localMeta(user.id), {
      onState: (state) => {
        accountStore.setState({ sync: state })
        // The session ended elsewhere (sign-out in another tab, expiry, disabled): sign in again.
        if (state.kind === 'signed_out') void refreshAccount()
      },
      onOffer: (offer) => accountStore.setState({ offer }),
    })
  }
  if (!navigator.locks) return run()
  void navigator.locks.request(`localchat.sync.${user.id}`, () => {
    if (mine !== generation) return undefined
    return new Promise<void>((resolve) => {
      release = resolve
      void run()
    })
  })
}

function stopSync(): void {
  generation++
  sync?.stop()
  sync = null
  release?.()
  release = null
}

/** Asks the server who is signed in, and starts or stops the sync to match. */
export async function refreshAccount(): Promise<void> {
  const status = await accountApi().status()
  accountStore.setState({ ready: true, auth: status.auth, user: status.user, signupOpen: status.signup_open })
  if (status.user && !status.user.disabled) await startSync(status.user)
  else stopSync()
}

export async function signIn(username: string, password: string, firstAccount: boolean): Promise<void> {
  const api = accountApi()
  await (firstAccount ? api.signUp(username, password) : api.logIn(username, password))
  await refreshAccount()
}

/**
 * Takes a user's conversations off this device (the server keeps them); what was never synced
 * (history the user chose not to import) stays. Read from the bases kept in IndexedDB: the tab
 * that synced may be another one.
 */
async function forget(userId: number): Promise<void> {
  const bases = openBaseDb(userId)
  const synced = await keys<string>(bases)
  await clear(bases)
  localStorage.removeItem(`localchat.sync.${userId}`)
  localStorage.removeItem(LAST_USER_KEY)
  const conversations = { ...chatStore.getState().conversations }
  for (const id of synced) delete conversations[id]
  chatStore.setState({ conversations, activeId: null })
}

/** Ends the session and takes the account's conversations off this device (forget). */
export async function signOut(): Promise<void> {
  const user = accountStore.getState().user
  await sync?.syncNow()
  stopSync()
  await accountApi().logOut()
  if (user) await forget(user.id)
  accountStore.setState({ sync: null, offer: 0, adminOpen: false, accountOpen: false })
  await refreshAccount()
}

export const importLocalHistory = () => sync?.importOffered() ?? Promise.resolve({ imported: 0, skipped: 0 })
export const keepLocalHistory = () => sync?.declineOffer()

/** Starts following the account: now, on focus, when back online and every 30 s while visible. */
export function watchAccount(): void {
  void refreshAccount()
  const again = () => void sync?.syncNow()
  addEventListener('focus', again)
  addEventListener('online', again)
  setInterval(() => {
    if (!document.hidden) again()
  }, POLL_MS)
  settingsStore.subscribe((s, prev) => {
    if (s.apiBaseUrl !== prev.apiBaseUrl) void refreshAccount()
  })
}
