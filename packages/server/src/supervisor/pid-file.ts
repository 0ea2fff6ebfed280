import { promises as fsp } from 'node:fs'
import { SupervisorError, readProcessStartTime } from '@naaccord/ipc-shared'

interface PidRecord {
  pid: number
  startTime: number | undefined
}

/**
 * Write this process's pid (and start time, so a reused pid is never signalled) for
 * `naaccord-ipc reload`: written to a temp file then renamed, so a reader never sees half a
 * file and a link planted at the path is replaced, not followed.
 *
 * @example
 * await writePidFile('/run/naaccord/service.sock.pid')
 */
export async function writePidFile(file: string): Promise<void> {
  const record: PidRecord = { pid: process.pid, startTime: readProcessStartTime(process.pid) }
  const tmp = `${file}.${process.pid}.tmp`
  await fsp.rm(tmp, { force: true })
  await fsp.writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o644, flag: 'wx' })
  await fsp.rename(tmp, file)
}

/** Remove the pid file if it still names this process. */
export async function removePidFile(file: string): Promise<void> {
  const record = await fsp.readFile(file, 'utf8').then((t) => JSON.parse(t) as PidRecord, () => undefined)
  if (record?.pid === process.pid) await fsp.rm(file, { force: true })
}

/**
 * Send `signal` to the supervisor named in `file`, after checking that the pid still belongs
 * to the process that wrote it (same start time).
 *
 * @throws {SupervisorError} when the file is missing or unreadable, or the supervisor is gone.
 * @example
 * await signalSupervisor('/run/naaccord/service.sock.pid', 'SIGHUP') // 12345
 */
export async function signalSupervisor(file: string, signal: NodeJS.Signals): Promise<number> {
  let record: PidRecord
  try {
    record = JSON.parse(await fsp.readFile(file, 'utf8')) as PidRecord
  } catch (err) {
    throw new SupervisorError(
      `cannot read the supervisor pid file ${file} (${(err as NodeJS.ErrnoException).code ?? 'not JSON'}); is "naaccord-ipc run" running with this --socket or --pid-file?`,
      { cause: err },
    )
  }
  if (!Number.isInteger(record.pid) || record.pid <= 0) throw new SupervisorError(`the supervisor pid file ${file} holds no pid; remove it and start "naaccord-ipc run" again`)
  const now = readProcessStartTime(record.pid)
  if (record.startTime !== undefined && now !== undefined && now !== record.startTime) {
    throw new SupervisorError(`the supervisor (pid ${record.pid}) named in ${file} is no longer running (its pid now belongs to another process)`)
  }
  try {
    process.kill(record.pid, signal)
  } catch (err) {
    throw new SupervisorError(`cannot signal the supervisor pid ${record.pid} from ${file} (${(err as NodeJS.ErrnoException).code}); is it still running, and as this user?`, {
      cause: err,
    })
  }
  return record.pid
}
