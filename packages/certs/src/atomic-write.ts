import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { CertsWriteError } from './errors.js'

/** A file-system failure while writing `file`, as ours: the code says what, the fs error stays the cause. */
function writeFailed(file: string, step: string, err: unknown): CertsWriteError {
  const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
  return new CertsWriteError(
    file,
    `cannot ${step} (${why}); check that its folder exists and is writable by uid ${process.getuid?.() ?? '?'}, and that the file system has room`,
    { cause: err },
  )
}

/** A file written in full to a temporary name beside its target, waiting to be renamed into place. */
export interface StagedFile {
  /** The final path. */
  readonly file: string
  /** rename(2) the temporary file over `file`: readers see the old content or the new, never a mix. */
  commit(): Promise<void>
  /** Remove the temporary file (after a failure elsewhere). Safe to call after commit. */
  discard(): Promise<void>
}

/**
 * Write `data` to a temporary file in the same folder as `file` (rename(2) is atomic only within
 * one file system), with `mode` from the start: the file is opened O_CREAT|O_EXCL with `mode`,
 * then fchmod'ed, because the umask may have removed bits we want (and O_EXCL never follows a
 * planted symlink). The data is fsync'ed before `commit()` can rename it, so a crash leaves the
 * old file or the complete new one.
 *
 * @throws {CertsWriteError} IPC_CERTS_WRITE: the temporary file cannot be made or written (the fs error is the cause).
 * @example
 * const key = await stageFile('certs/localhost.key', keyPem, 0o600)
 * await key.commit()
 */
export async function stageFile(file: string, data: string | Uint8Array, mode: number): Promise<StagedFile> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', mode).catch((err: unknown) => {
    throw writeFailed(file, 'create its temporary file', err)
  })
  try {
    await handle.chmod(mode)
    await handle.writeFile(data)
    await handle.sync()
    await handle.close()
  } catch (err) {
    await handle.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw writeFailed(file, 'write its temporary file', err)
  }
  let committed = false
  return {
    file,
    async commit() {
      await rename(tmp, file).catch((err: unknown) => {
        throw writeFailed(file, 'rename its temporary file into place', err)
      })
      committed = true
    },
    async discard() {
      if (!committed) await unlink(tmp).catch(() => {})
    },
  }
}

/**
 * Write one file atomically with `mode`: stage, rename, then fsync the folder so that the
 * rename itself survives a crash.
 *
 * @throws {CertsWriteError} IPC_CERTS_WRITE: a step failed (the fs error is the cause); the old file stays.
 * @example
 * await writeFileAtomic('certs/ca.crt', certPem, 0o644)
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const staged = await stageFile(file, data, mode)
  try {
    await staged.commit()
  } finally {
    await staged.discard()
  }
  await syncDir(path.dirname(file))
}

/**
 * Write several files, each atomically, renamed in the order given once all are staged: if any
 * write fails, nothing is renamed. (The set as a whole is not atomic; see `rotate` for why the
 * order key then certificate is the one to use.)
 *
 * @throws {CertsWriteError} IPC_CERTS_WRITE: a step failed (the fs error is the cause).
 * @example
 * await writeFilesAtomic([{ file: 'a.key', data: keyPem, mode: 0o600 }, { file: 'a.crt', data: certPem, mode: 0o644 }])
 */
export async function writeFilesAtomic(files: readonly { file: string; data: string | Uint8Array; mode: number }[]): Promise<void> {
  const staged: StagedFile[] = []
  try {
    for (const f of files) staged.push(await stageFile(f.file, f.data, f.mode))
    for (const s of staged) await s.commit()
  } finally {
    await Promise.all(staged.map((s) => s.discard()))
  }
  for (const dir of new Set(files.map((f) => path.dirname(f.file)))) await syncDir(dir)
}

/**
 * fsync(2) a folder so that renames in it are durable. Platforms that cannot fsync a folder are skipped.
 *
 * @throws {CertsWriteError} IPC_CERTS_WRITE: the folder cannot be opened or synced (the fs error is the cause).
 * @example
 * await syncDir('/srv/certs')
 */
export async function syncDir(dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw writeFailed(dir, 'fsync the folder', err)
  } finally {
    await handle?.close()
  }
}
