import { useStore } from 'zustand'
import { useT, type MessageKey } from '../i18n'
import { shortcutList, type Shortcut } from '../lib/shortcuts'
import { uiStore } from '../store/ui'
import { Dialog } from '../ui/Dialog'

const isMac = /Mac|iPhone|iPad/.test(navigator.platform)

const LABEL: Record<Shortcut | 'stop', MessageKey> = {
  newChat: 'shortcutNewChat',
  search: 'shortcutSearch',
  focusInput: 'shortcutFocusInput',
  copyLast: 'shortcutCopyLast',
  stop: 'shortcutStop',
  help: 'shortcutHelp',
}

/** The `?` sheet: every shortcut with its keys. */
export function ShortcutsDialog() {
  const t = useT()
  const open = useStore(uiStore, (s) => s.shortcutsOpen)
  return (
    <Dialog open={open} title={t('shortcuts')} onClose={() => uiStore.setState({ shortcutsOpen: false })}>
      <table className="shortcuts">
        <tbody>
          {shortcutList(isMac).map(({ keys, action }) => (
            <tr key={action}>
              <td>{t(LABEL[action])}</td>
              <td className="shortcut-keys">
                {keys.map((k) => (
                  <kbd key={k}>{k}</kbd>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Dialog>
  )
}
