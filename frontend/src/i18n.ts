import { useStore } from 'zustand'
import { settingsStore, type LanguagePref } from './store/settings'

const en = {
  appName: 'LocalChat',
  newChat: 'New chat',
  searchChats: 'Search chats',
  conversations: 'Conversations',
  noChats: 'No conversations yet',
  noMatches: 'No matching conversations',
  today: 'Today',
  previous7: 'Previous 7 days',
  older: 'Older',
  untitled: 'New conversation',
  rename: 'Rename',
  renameChat: 'Rename conversation',
  delete: 'Delete',
  deleteConfirm: 'Delete this conversation?',
  cancel: 'Cancel',
  save: 'Save',
  close: 'Close',
  exportChats: 'Export',
  importChats: 'Import',
  imported: 'Imported {n} conversations',
  importFailed: 'Import failed: {reason}',
  settings: 'Settings',
  toggleSidebar: 'Show or hide conversations',
  model: 'Model',
  noModels: 'No model available',
  chatSettings: 'Conversation settings',
  messageLabel: 'Message',
  messagePlaceholder: 'Message the local model…',
  send: 'Send',
  stop: 'Stop',
  composerHint: 'Enter to send · Shift+Enter for a new line · Esc to stop',
  you: 'You',
  assistant: 'Assistant',
  copy: 'Copy',
  copied: 'Copied',
  copyCode: 'Copy code',
  copyMessage: 'Copy message',
  edit: 'Edit',
  editMessage: 'Edit message',
  saveAndSend: 'Save & send',
  regenerate: 'Regenerate',
  retry: 'Retry',
  stopped: 'Stopped',
  interrupted: 'Interrupted',
  thinking: 'Waiting for the first token…',
  tokens: '{n} tokens',
  tokensApprox: '~{n} tokens',
  tokensPerSecond: '{n} tokens/s',
  ttft: 'first token {n} s',
  jumpToLatest: 'Jump to latest',
  welcomeTitle: 'What can I help with?',
  welcomeBody: 'Chat with the model running on this machine. Nothing leaves it.',
  suggestion1: 'Explain what a hash map is, with a short Python example.',
  suggestion2: 'Write a haiku about the sea.',
  suggestion3: 'Give me a table of three planets and their sizes.',
  systemPrompt: 'System prompt',
  systemPromptHint: 'Instructions the model sees before this conversation.',
  temperature: 'Temperature',
  topP: 'Top p',
  maxTokens: 'Max tokens',
  seed: 'Seed',
  seedHint: 'Empty: random each time',
  saveAsDefault: 'Also start new chats with these parameters',
  apiBaseUrl: 'API base URL',
  apiBaseUrlHint: 'Empty: this site’s /v1. For another server e.g. http://127.0.0.1:8000/v1',
  apiKey: 'API key',
  apiKeyHint: 'Only if the server was started with API_KEY. Stored in this browser.',
  language: 'Language',
  languageAuto: 'Browser default',
  theme: 'Theme',
  themeSystem: 'System',
  themeLight: 'Light',
  themeDark: 'Dark',
  connection: 'Connection',
  appearance: 'Appearance',
  testConnection: 'Test connection',
  connectionOk: 'Connected · {n} chat models',
  errUnreachableTitle: 'Can’t reach the server',
  errUnreachableHelp: 'Is the backend running (make run)? Check the API base URL in Settings: {url}',
  errNotApiTitle: 'This address is not the API',
  errNotApiHelp:
    '{url} answered with a web page instead of the API. OpenAI-compatible servers serve the API under /v1 (e.g. http://127.0.0.1:8000/v1).',
  useUrl: 'Use {url}',
  errAuthTitle: 'This server needs an API key',
  errAuthHelp: 'Enter the key the server was started with (API_KEY).',
  errRateTitle: 'The server is busy',
  errRateHelp: 'Too many requests are queued. Wait a moment and retry.',
  errRateWait: 'Retry in {n} s',
  errContextTitle: 'The conversation is too long for the model',
  errContextHelp:
    'Start a new chat, edit your last message to be shorter, or lower Max tokens in the conversation settings.',
  errBadRequestTitle: 'The server rejected the request',
  errServerTitle: 'The server reported an error',
  errInterruptedTitle: 'The answer was cut off',
  errInterruptedHelp: 'The connection closed before the answer finished. What arrived is kept; retry for a full answer.',
  openSettings: 'Open settings',
  saveKeyAndRetry: 'Save key & retry',
}

export type MessageKey = keyof typeof en

const zh: Record<MessageKey, string> = {
  appName: 'LocalChat',
  newChat: '新对话',
  searchChats: '搜索对话',
  conversations: '对话列表',
  noChats: '还没有对话',
  noMatches: '没有匹配的对话',
  today: '今天',
  previous7: '过去 7 天',
  older: '更早',
  untitled: '新对话',
  rename: '重命名',
  renameChat: '重命名对话',
  delete: '删除',
  deleteConfirm: '删除这个对话？',
  cancel: '取消',
  save: '保存',
  close: '关闭',
  exportChats: '导出',
  importChats: '导入',
  imported: '已导入 {n} 个对话',
  importFailed: '导入失败：{reason}',
  settings: '设置',
  toggleSidebar: '显示或隐藏对话列表',
  model: '模型',
  noModels: '没有可用的模型',
  chatSettings: '对话设置',
  messageLabel: '消息',
  messagePlaceholder: '给本地模型发消息…',
  send: '发送',
  stop: '停止',
  composerHint: 'Enter 发送 · Shift+Enter 换行 · Esc 停止',
  you: '你',
  assistant: '助手',
  copy: '复制',
  copied: '已复制',
  copyCode: '复制代码',
  copyMessage: '复制消息',
  edit: '编辑',
  editMessage: '编辑消息',
  saveAndSend: '保存并发送',
  regenerate: '重新生成',
  retry: '重试',
  stopped: '已停止',
  interrupted: '已中断',
  thinking: '正在等待第一个词元…',
  tokens: '{n} 个词元',
  tokensApprox: '约 {n} 个词元',
  tokensPerSecond: '{n} 词元/秒',
  ttft: '首词元 {n} 秒',
  jumpToLatest: '跳到最新',
  welcomeTitle: '有什么可以帮你？',
  welcomeBody: '与本机运行的模型对话，数据不会离开这台电脑。',
  suggestion1: '解释什么是哈希表，并给一个简短的 Python 例子。',
  suggestion2: '写一首关于大海的俳句。',
  suggestion3: '用表格列出三颗行星及其大小。',
  systemPrompt: '系统提示词',
  systemPromptHint: '模型在本对话开始前看到的指示。',
  temperature: '温度',
  topP: 'Top p',
  maxTokens: '最大词元数',
  seed: '随机种子',
  seedHint: '留空：每次随机',
  saveAsDefault: '新对话也使用这些参数',
  apiBaseUrl: 'API 基础地址',
  apiBaseUrlHint: '留空：本站的 /v1。其他服务器例如 http://127.0.0.1:8000/v1',
  apiKey: 'API 密钥',
  apiKeyHint: '仅当服务器以 API_KEY 启动时需要。保存在本浏览器中。',
  language: '语言',
  languageAuto: '跟随浏览器',
  theme: '主题',
  themeSystem: '跟随系统',
  themeLight: '浅色',
  themeDark: '深色',
  connection: '连接',
  appearance: '外观',
  testConnection: '测试连接',
  connectionOk: '已连接 · {n} 个对话模型',
  errUnreachableTitle: '无法连接服务器',
  errUnreachableHelp: '后端是否在运行（make run）？请在设置中检查 API 基础地址：{url}',
  errNotApiTitle: '这个地址不是 API',
  errNotApiHelp: '{url} 返回的是网页而不是 API。兼容 OpenAI 的服务器通常在 /v1 下提供 API（例如 http://127.0.0.1:8000/v1）。',
  useUrl: '改用 {url}',
  errAuthTitle: '此服务器需要 API 密钥',
  errAuthHelp: '请输入服务器启动时设置的密钥（API_KEY）。',
  errRateTitle: '服务器繁忙',
  errRateHelp: '排队的请求太多。请稍候再试。',
  errRateWait: '{n} 秒后可重试',
  errContextTitle: '对话太长，超出了模型的上下文',
  errContextHelp: '请新建对话、把最后一条消息改短，或在对话设置中调低最大词元数。',
  errBadRequestTitle: '服务器拒绝了请求',
  errServerTitle: '服务器报告了错误',
  errInterruptedTitle: '回答被中断',
  errInterruptedHelp: '回答完成前连接已关闭。已收到的内容会保留；重试可获得完整回答。',
  openSettings: '打开设置',
  saveKeyAndRetry: '保存密钥并重试',
}

export type Language = 'en' | 'zh'

const dictionaries: Record<Language, Record<MessageKey, string>> = { en, zh }

/** The first of the browser's preferred languages that we have; English otherwise. */
export function resolveLanguage(pref: LanguagePref, browser: readonly string[]): Language {
  if (pref !== 'auto') return pref
  for (const tag of browser) {
    const l = tag.toLowerCase()
    if (l.startsWith('zh')) return 'zh'
    if (l.startsWith('en')) return 'en'
  }
  return 'en'
}

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string

export function translator(lang: Language): Translate {
  const dict = dictionaries[lang]
  return (key, vars) => dict[key].replace(/\{(\w+)\}/g, (_, name: string) => String(vars?.[name] ?? `{${name}}`))
}

// One translator per language, so components can list `t` as a stable dependency.
const translators: Record<Language, Translate> = { en: translator('en'), zh: translator('zh') }

export function useLanguage(): Language {
  const pref = useStore(settingsStore, (s) => s.language)
  return resolveLanguage(pref, navigator.languages.length ? navigator.languages : [navigator.language])
}

export function useT(): Translate {
  const lang = useLanguage()
  return translators[lang]
}
