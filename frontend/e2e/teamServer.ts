import { spawn, type ChildProcess } from 'node:child_process'
import { openSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SHOTS, test } from './fixtures.ts'
import { freePort } from './net.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A team's server as the tests of one file see it: where it listens, and its own database. */
export interface TeamServer {
  baseUrl: string
}

/**
 * Starts, for the tests of the calling file only, a team's server (`env` says its AUTH; its own
 * database in a temporary DATA_DIR) with the same model and no embedder: the shared backend
 * runs AUTH=none with an API key. Its log goes to test-results/<name>-backend.log. Registers
 * the beforeAll and afterAll that start and stop it; `baseUrl` is set once it answers.
 */
export function teamServer(name: string, env: Record<string, string>): TeamServer {
  const found: TeamServer = { baseUrl: '' }
  let server: ChildProcess | null = null
  let dataDir = ''

  test.beforeAll(async () => {
    test.setTimeout(180_000)
    const port = await freePort()
    found.baseUrl = `http://127.0.0.1:${port}`
    dataDir = await mkdtemp(join(tmpdir(), `localchat-${name}-`))
    const log = openSync(join(SHOTS, `${name}-backend.log`), 'w')
    const started = spawn(join(ROOT, '.venv', 'bin', 'python'), ['-m', 'app', '--host', '127.0.0.1', '--port', String(port)], {
      cwd: ROOT,
      env: { ...process.env, ...env, DATA_DIR: dataDir, API_KEY: '', EMBEDDING_MODEL_PATH: '', PYTHONPATH: join(ROOT, 'backend') },
      // Its log (stderr: Python's logging) in a file beside the suite's own backend log.
      stdio: ['ignore', log, log],
    })
    server = started
    const deadline = Date.now() + 170_000
    for (;;) {
      if (started.exitCode !== null) throw new Error(`The ${name} backend exited; see test-results/${name}-backend.log`)
      if (await fetch(`${found.baseUrl}/health`).then((r) => r.ok, () => false)) break
      if (Date.now() > deadline) throw new Error(`The ${name} backend did not start`)
      await new Promise((r) => setTimeout(r, 300))
    }
  })

  test.afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once('exit', r))
      server.kill('SIGTERM')
      await exited
    }
    await rm(dataDir, { recursive: true, force: true })
  })

  return found
}
