import { spawn, type ChildProcess } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runnerFlags, type Runner } from './runner.js'
import { pinnedCommand, type Pinning } from './pinning.js'
import type { ChildMessage, ChildRequest, EndpointName, Endpoints, ServerChildConfig, WebChildConfig } from './protocol.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CHILD = path.join(ROOT, 'bench', 'servers.ts')
const WEB_CHILD = path.join(ROOT, 'bench', 'web-child.ts')

export interface ServerChild {
  readonly pid: number
  readonly endpoints: Endpoints
  /** User + system CPU time of the whole server process so far, microseconds. */
  cpuMicros(): Promise<number>
  /** serve()'s per-connection handling time on `endpoint` since the last call (server child only). */
  gate(endpoint: EndpointName): Promise<{ medianUs: number; connections: number }>
  /** Close every server and wait for the process to exit (so a --cpu-prof profile is written). */
  stop(): Promise<void>
}

export interface StartOptions {
  /** The server child's config, or with `web: true` the web child's. */
  readonly config: ServerChildConfig | WebChildConfig
  /**
   * Start bench/web-child.ts (the public web server of the whole hop) instead of the server
   * child. It is not pinned to the server CPU: it may run on any CPU (see bench/README.md).
   */
  readonly web?: boolean
  readonly pinning: Pinning
  /** How our TypeScript packages are loaded in the child. */
  readonly runner: Runner
  /** Run the child under `node --cpu-prof`, writing the profile into this folder. */
  readonly cpuProfDir?: string
}

/**
 * Start bench/servers.ts in its own Node process (our packages compiled from their sources by
 * `runner`), pinned to the server CPU, and wait until every server listens.
 */
export function startServerChild(options: StartOptions): Promise<ServerChild> {
  const nodeArgs = [
    ...runnerFlags(options.runner, ROOT),
    ...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []),
    options.web ? WEB_CHILD : CHILD,
    JSON.stringify(options.config),
  ]
  const { command, args } = options.web ? anyCpu(options.pinning, nodeArgs) : pinnedCommand(options.pinning, process.execPath, nodeArgs)
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'info' },
  })
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => reject(new Error(`server child exited (${signal ?? code}) before it was ready`))
    child.once('exit', onExit)
    child.once('error', reject)
    child.on('message', function onMessage(message: ChildMessage) {
      if (message.type === 'failed') {
        child.off('message', onMessage)
        reject(new Error(`server child failed to start:\n${message.message}`))
      } else if (message.type === 'ready') {
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(control(child, message.endpoints, message.pid))
      }
    })
  })
}

/** A child that may run on every CPU (this pinned process's children would inherit its one CPU). */
function anyCpu(pinning: Pinning, nodeArgs: string[]): { command: string; args: string[] } {
  if (!pinning.pinned) return { command: process.execPath, args: nodeArgs }
  return { command: 'taskset', args: ['-c', `0-${os.cpus().length - 1}`, process.execPath, ...nodeArgs] }
}

function control(child: ChildProcess, endpoints: Endpoints, pid: number): ServerChild {
  let nextId = 1
  const waiting = new Map<number, (message: ChildMessage) => void>()
  child.on('message', (message: ChildMessage) => {
    if ('id' in message) {
      waiting.get(message.id)?.(message)
      waiting.delete(message.id)
    }
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ask = (type: 'cpu' | 'gate', endpoint?: EndpointName) =>
    new Promise<ChildMessage>((resolve) => {
      const id = nextId++
      waiting.set(id, resolve)
      child.send((type === 'gate' ? { id, type, endpoint: endpoint! } : { id, type }) satisfies ChildRequest)
    })
  return {
    pid,
    endpoints,
    async cpuMicros() {
      const reply = await ask('cpu')
      if (reply.type !== 'cpu') throw new Error(`unexpected reply ${reply.type}`)
      return reply.micros
    },
    async gate(endpoint) {
      const reply = await ask('gate', endpoint)
      if (reply.type !== 'gate') throw new Error(`unexpected reply ${reply.type}`)
      return { medianUs: reply.medianUs, connections: reply.connections }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.send({ id: nextId++, type: 'stop' } satisfies ChildRequest)
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}
