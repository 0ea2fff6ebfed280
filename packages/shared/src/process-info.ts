import { readFileSync, readlinkSync } from 'node:fs'

/**
 * Parses the text of /proc/<pid>/stat. proc(5): field 2, comm, is the command name in parentheses
 * and may itself contain spaces and ')' (a process may call itself "a) b"), so the fields after it
 * are found after the LAST ')'; field 22 is starttime, in clock ticks since boot.
 * Returns undefined for text that does not have that shape.
 *
 * @example
 * parseProcStat('42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9001 0 0')
 * // { pid: 42, comm: 'a) b', state: 'S', startTime: 9001 }
 */
export function parseProcStat(
  text: string,
): { pid: number; comm: string; state: string; startTime: number } | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 1 || close < open) return undefined
  const pidText = text.slice(0, open).trim()
  if (!/^\d+$/.test(pidText)) return undefined
  // After ")" come fields 3 (state) onwards, so field 22 is at index 22 - 3.
  // proc(5): fields are separated by single spaces; only the first 20 after comm are needed.
  const rest = text.slice(close + 1).trimStart().split(' ', 20)
  const state = rest[0]
  const startText = rest[22 - 3]
  if (state === undefined || startText === undefined || !/^\d+$/.test(startText)) return undefined
  const startTime = Number(startText)
  if (!Number.isSafeInteger(startTime)) return undefined
  return { pid: Number(pidText), comm: text.slice(open + 1, close), state, startTime }
}

function isPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0
}

/**
 * The start time of a process (proc(5) /proc/<pid>/stat field 22, clock ticks since boot), or
 * undefined where unreadable: no such process, no procfs (macOS, BSD), or a malformed line.
 * Together with the pid it names one process for the life of the system, since a reused pid has
 * a later start time.
 *
 * @example
 * const started = readProcessStartTime(process.pid) // e.g. 1234567
 * // later: readProcessStartTime(pid) !== started means the pid now belongs to another process
 */
export function readProcessStartTime(pid: number): number | undefined {
  if (!isPid(pid)) return undefined
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.startTime
  } catch {
    return undefined
  }
}

/**
 * Best-effort facts for a refusal log line: the executable (proc(5) /proc/<pid>/exe, which ends
 * in " (deleted)" when the file was replaced since) and the command name (/proc/<pid>/comm, at
 * most 15 bytes, settable by the process itself, so only a hint). Fields are undefined where
 * unreadable: not Linux, the process has gone, or reading exe needs ptrace access to it.
 * Never throws.
 *
 * @example
 * const { exe, comm } = describeProcess(creds.pid)
 * log.warn({ pid: creds.pid, exe, comm }, 'refused connection')
 */
export function describeProcess(pid: number): { exe: string | undefined; comm: string | undefined } {
  if (!isPid(pid)) return { exe: undefined, comm: undefined }
  let exe: string | undefined
  let comm: string | undefined
  try {
    exe = readlinkSync(`/proc/${pid}/exe`)
  } catch {}
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '')
  } catch {}
  return { exe, comm }
}

/** One line of /proc/locks (proc(5)): a lock the kernel holds for a process, or one it waits for. */
export interface ProcLock {
  /** FLOCK, POSIX, OFDLCK, LEASE, DELEG... */
  readonly kind: string
  /** WRITE, READ, UNLCK. */
  readonly type: string
  /** The process that took it (for flock, the one that called flock(2)); -1 for OFD locks. */
  readonly pid: number
  /** Device of the locked file, as major and minor numbers. */
  readonly major: number
  readonly minor: number
  /** Inode of the locked file. */
  readonly ino: bigint
  /** True for a request that waits for the lock (shown with "->"), not a held lock. */
  readonly blocked: boolean
}

/**
 * Parses the text of /proc/locks. proc(5), fs/locks.c lock_get_status: each line is
 * `<id>: [->] <kind> <ADVISORY|MANDATORY|ACTIVE...> <type> <pid> <major>:<minor>:<inode> <start> <end>`,
 * major and minor in hex; a line with "->" is a waiter, not a holder. Lines of another shape
 * (a lock with no inode) are skipped.
 *
 * @example
 * parseProcLocks('1: FLOCK  ADVISORY  WRITE 4121 fe:00:2147367 0 EOF\n')
 * // [{ kind: 'FLOCK', type: 'WRITE', pid: 4121, major: 254, minor: 0, ino: 2147367n, blocked: false }]
 */
export function parseProcLocks(text: string): ProcLock[] {
  const locks: ProcLock[] = []
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(->\s+)?(\S+)\s+\S+\s+(\S+)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line)
    if (m === null) continue
    locks.push({
      kind: m[2]!,
      type: m[3]!,
      pid: Number(m[4]),
      major: Number.parseInt(m[5]!, 16),
      minor: Number.parseInt(m[6]!, 16),
      ino: BigInt(m[7]!),
      blocked: m[1] !== undefined,
    })
  }
  return locks
}

/** glibc's gnu_dev_major/minor: st_dev as stat(2) encodes it, split into major and minor. */
function devParts(dev: bigint): { major: number; minor: number } {
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  }
}

/**
 * The pids that hold an flock(2) lock on the file with device `dev` and inode `ino` (from a
 * `{ bigint: true }` stat), by the kernel's word (/proc/locks): unlike a pid written into a file,
 * nobody can claim it without holding the lock. Undefined where /proc/locks cannot be read (not
 * Linux). Pids are as seen from this process's pid namespace.
 *
 * @example
 * const st = fs.statSync('/run/naaccord/service.sock.lock', { bigint: true })
 * flockHolders(st.dev, st.ino) // [4121]
 */
export function flockHolders(dev: bigint, ino: bigint): number[] | undefined {
  let text: string
  try {
    text = readFileSync('/proc/locks', 'utf8')
  } catch {
    return undefined
  }
  const { major, minor } = devParts(dev)
  return parseProcLocks(text)
    .filter((l) => l.kind === 'FLOCK' && !l.blocked && l.ino === ino && l.major === major && l.minor === minor && l.pid > 0)
    .map((l) => l.pid)
}
