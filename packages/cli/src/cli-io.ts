import { InvalidOptionError, IpcError, UsageError } from '@naaccord/ipc-shared'

export { UsageError }

/** Where the CLI writes; tests pass their own to capture output. */
export interface CliIo {
  stdout(text: string): void
  stderr(text: string): void
}

/** The process's stdout and stderr. */
export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
}

/** Exit codes: 0 done; 1 an unexpected failure (a bug, a full disk); 2 bad usage or a refusal whose message says what to do. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 })

/**
 * One line on stderr for what `main()` caught, and the exit code: 2 for usage mistakes (an
 * IPC_USAGE error, printed with a pointer to --help) and our own refusals (the message says what
 * to do), 1 for anything else (with the stack under NAACCORD_DEBUG).
 *
 * @example
 * return report(err, io) // 2 for an IpcError
 */
export function report(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr(`naaccord-ipc: ${err.message}\nRun "naaccord-ipc certs --help" for usage.\n`)
    return EXIT.usage
  }
  if (err instanceof InvalidOptionError) {
    io.stderr(`naaccord-ipc: ${err.message}\n`)
    return EXIT.usage
  }
  if (err instanceof IpcError) {
    io.stderr(`naaccord-ipc: ${err.code}: ${err.message}\n`)
    return EXIT.usage
  }
  const e = err as NodeJS.ErrnoException
  const detail = process.env.NAACCORD_DEBUG ? `\n${e?.stack ?? String(err)}` : ' (set NAACCORD_DEBUG=1 for a stack trace)'
  io.stderr(`naaccord-ipc: unexpected failure: ${e?.message ?? String(err)}${detail}\n`)
  return EXIT.failure
}
