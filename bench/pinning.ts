import { spawnSync } from 'node:child_process'
import os from 'node:os'

/** Where the server child and the load generator run. */
export interface Pinning {
  /** True when both are pinned with taskset. */
  readonly pinned: boolean
  /** taskset CPU list for the server child, e.g. "0". */
  readonly serverCpus: string | undefined
  /** taskset CPU list for this process (the load generator), e.g. "1". */
  readonly loadCpus: string | undefined
  /** One line for the report. */
  readonly note: string
}

function hasTaskset(): boolean {
  return spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0
}

/**
 * Pin this process (all its threads, and so every thread it starts later) to the last CPU and
 * plan the server child on the first, so that server and load generator never share a core.
 * Falls back to no pinning, and says why, when taskset is missing, there is one CPU, or `--no-pin`.
 */
export function pinLoadGenerator(enabled: boolean): Pinning {
  // os.cpus(), not availableParallelism(): the latter shrinks once this process is pinned.
  const cpus = os.cpus().length
  const unpinned = (why: string): Pinning => ({ pinned: false, serverCpus: undefined, loadCpus: undefined, note: `not pinned (${why}); server and load generator share ${cpus} CPU(s)` })
  if (!enabled) return unpinned('--no-pin')
  if (process.platform !== 'linux' || !hasTaskset()) return unpinned('taskset not available')
  if (cpus < 2) return unpinned('one CPU')
  const serverCpus = '0'
  const loadCpus = String(cpus - 1)
  // -a: every thread of the process, including libuv and V8 helper threads already started.
  const res = spawnSync('taskset', ['-a', '-cp', loadCpus, String(process.pid)], { encoding: 'utf8' })
  if (res.status !== 0) return unpinned(`taskset failed: ${res.stderr.trim()}`)
  return {
    pinned: true,
    serverCpus,
    loadCpus,
    note: `taskset: server child on CPU ${serverCpus}, load generator (the keep-alive and client drivers) on CPU ${loadCpus}`,
  }
}

/** `command args`, prefixed with taskset so that it runs on the server CPUs when pinning is on. */
export function pinnedCommand(pinning: Pinning, command: string, args: readonly string[]): { command: string; args: string[] } {
  if (!pinning.pinned || pinning.serverCpus === undefined) return { command, args: [...args] }
  return { command: 'taskset', args: ['-c', pinning.serverCpus, command, ...args] }
}
