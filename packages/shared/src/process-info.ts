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
