import { spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import { mkdir, rm, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './net.ts'

const FRONTEND = join(dirname(fileURLToPath(import.meta.url)), '..')
const LOAD_TIMEOUT_MS = 180_000

async function waitForHealth(url: string, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + LOAD_TIMEOUT_MS
  while (Date.now() < deadline) {
    const why = exited()
    if (why) throw new Error(`The backend exited before it was ready (${why}); see test-results/backend.log`)
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // Not listening yet: the model is still loading.
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`The backend did not answer ${url} within ${LOAD_TIMEOUT_MS / 1000} s`)
}

/**
 * Starts the real backend (`make serve`, which serves ../frontend/dist) with an API key, so the
 * tests can see the page ask for it, and a small queue. Returns the teardown that stops it.
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const port = await freePort()
  const apiKey = `e2e-${Math.random().toString(36).slice(2)}`
  const baseUrl = `http://127.0.0.1:${port}`
  await mkdir(join(FRONTEND, 'test-results'), { recursive: true })
  const log = openSync(join(FRONTEND, 'test-results', 'backend.log'), 'w')
  // A second chat model and a second embeddings model in MODELS_DIR, listed but loaded only when
  // a request names them (models.spec.ts, model-choice.spec.ts): the default models' folders
  // under other names.
  const modelsDir = join(FRONTEND, 'test-results', 'models-dir')
  await rm(modelsDir, { recursive: true, force: true })
  await mkdir(modelsDir)
  await symlink(join(FRONTEND, '..', 'models', 'SmolLM2-135M-Instruct'), join(modelsDir, 'second-model'))
  await symlink(join(FRONTEND, '..', 'models', 'all-MiniLM-L6-v2'), join(modelsDir, 'second-embedder'))
  const started = Date.now()
  const server = spawn('make', ['-C', '..', 'serve', `PORT=${port}`, 'HOST=127.0.0.1'], {
    cwd: FRONTEND,
    // A small queue (4 running + 8 waiting) so one request asking for 16 answers meets a real 429.
    // PYTHONPATH: this checkout's backend (and so its dist/), even where the venv's editable
    // install points at another checkout (a git worktree sharing the venv).
    env: {
      ...process.env,
      API_KEY: apiKey,
      MAX_NUM_SEQS: '4',
      MAX_WAITING: '8',
      MODELS_DIR: modelsDir,
      PYTHONPATH: join(FRONTEND, '..', 'backend'),
    },
    stdio: ['ignore', log, log],
    // Own process group: stopping it stops make and the Python server under it.
    detached: true,
  })
  let exit: string | null = null
  const exited = new Promise<void>((resolve) => {
    server.once('exit', (code, signal) => {
      exit = `code ${code}, signal ${signal}`
      resolve()
    })
  })
  // Even if the runner ends without its teardown (a crash, a CI timeout's SIGTERM), the backend
  // does not outlive it. Playwright handles SIGINT itself and then runs the teardown.
  const killGroup = () => {
    if (!exit && server.pid !== undefined) process.kill(-server.pid, 'SIGKILL')
  }
  process.once('exit', killGroup)
  process.once('SIGTERM', () => {
    killGroup()
    process.exit(143)
  })
  const stop = async () => {
    if (exit || server.pid === undefined) return
    process.kill(-server.pid, 'SIGTERM')
    const killed = setTimeout(() => server.pid && process.kill(-server.pid, 'SIGKILL'), 15_000)
    await exited
    clearTimeout(killed)
  }
  try {
    await waitForHealth(`${baseUrl}/health`, () => exit)
  } catch (e) {
    await stop()
    throw e
  }
  console.log(`Backend ready on ${baseUrl} after ${((Date.now() - started) / 1000).toFixed(1)} s`)
  process.env.E2E_BASE_URL = baseUrl
  process.env.E2E_API_KEY = apiKey
  return stop
}
