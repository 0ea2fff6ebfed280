/**
 * `pnpm start`: the services server on the Unix socket, run under the socket-holding supervisor
 * (`naaccord-ipc run`), then the web server on 127.0.0.1:8000 calling it. `kill -HUP` on the
 * supervisor reloads the services server without refusing or cutting a request. The socket goes to /var/run/naaccord/service.sock when this user may create it
 * there, else to .run/service.sock in the checkout; either way the choice is printed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_SOCKET_PATH } from '@naaccord/ipc-shared'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

function chooseSocketPath(): { socketPath: string; why: string } {
  if (process.env.NAACCORD_SOCKET_PATH) return { socketPath: process.env.NAACCORD_SOCKET_PATH, why: 'from NAACCORD_SOCKET_PATH' }
  const dir = path.dirname(DEFAULT_SOCKET_PATH)
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
    accessSync(dir, constants.W_OK)
    const st = statSync(dir)
    if (st.uid === process.getuid?.() || st.uid === 0) return { socketPath: DEFAULT_SOCKET_PATH, why: 'the production default' }
  } catch {
    // fall through to the project-local folder
  }
  return { socketPath: path.join(root, '.run', 'service.sock'), why: `${dir} is not writable by this user, so a project-local folder` }
}

const { socketPath, why } = chooseSocketPath()
const env = { ...process.env, NAACCORD_SOCKET_PATH: socketPath }
const children: ChildProcess[] = []

const TSX = ['--import', 'tsx', '--conditions=@naaccord/source']

function start(name: string, file: string, supervised = false): ChildProcess {
  const app = [...TSX, path.join(here, file)]
  // Supervised: `naaccord-ipc run --socket <path> -- node <app>`, the CLI from source (one process,
  // so its pid is the one to send SIGHUP to).
  const args = supervised ? [...TSX, path.join(root, 'packages', 'cli', 'src', 'cli.ts'), 'run', '--socket', socketPath, '--', process.execPath, ...app] : app
  const child = spawn(process.execPath, args, {
    env,
    stdio: 'inherit',
    cwd: root,
  })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping`)
      stop(1)
    }
  })
  children.push(child)
  return child
}

let stopping = false
function stop(code = 0): void {
  if (stopping) return
  stopping = true
  for (const c of children) c.kill('SIGTERM')
  setTimeout(() => process.exit(code), 2000).unref()
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(() => process.exit(code))
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))

async function waitForSocket(p: string, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    try {
      if (statSync(p).isSocket()) return
    } catch {}
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`the services server did not create ${p} within ${ms} ms`)
}

console.log(`naaccord-ipc example: socket ${socketPath} (${why})`)
const supervisor = start('services', 'services/server.ts', true)
try {
  await waitForSocket(socketPath, 15_000)
} catch (err) {
  console.error(String(err))
  stop(1)
}
start('web', 'web/server.ts')
const port = process.env.NAACCORD_WEB_PORT ?? '8000'
// "Ready" only once the web server accepts connections (bounded: 20 s), not after a fixed pause.
async function waitForPort(p: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until && !stopping) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(p, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (up) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}
void waitForPort(Number(port), 20_000).then((up) => {
  if (!up) {
    if (!stopping) console.error(`the web server did not listen on port ${port} within 20 s`)
    return
  }
  if (stopping) return
  console.log(
    [
      '',
      `Ready. Try:`,
      `  curl -s localhost:${port}/api/reports/1`,
      `  curl -s -X POST localhost:${port}/api/reports -H 'content-type: application/json' -d '{"site":"site-c","cohort":"hiv-2025","patients":42}'`,
      `  curl -s localhost:${port}/api/whoami`,
      `  curl -s --unix-socket ${socketPath} http://localhost/healthz`,
      `Reload the services server (new process first, then the old one drains; no request fails):`,
      `  kill -HUP ${supervisor.pid}        # or: pnpm naaccord-ipc reload --socket ${socketPath}`,
      'Ctrl-C stops both.',
      '',
    ].join('\n'),
  )
})
