import { promises as fsp } from 'node:fs'
import type { ListenOptions, Server } from 'node:net'
import path from 'node:path'
import { SocketInUseError, UnsafeSocketPathError } from '@naaccord/ipc-shared'

/** server.listen() as a promise that rejects on the listen error (EADDRINUSE, EACCES...). */
export function listen(server: Server, options: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

export interface BoundSocket {
  /** Inode of the socket file we published: removal on close only if it is still this one. */
  readonly ino: number
}

/**
 * Bind `server` to `socketPath` so that the socket is never reachable with a wider mode than
 * `mode`, not even for a moment. bind(2) creates the file with the process umask and Node has no
 * mode option, and the kernel checks the mode at connect(2); so we bind inside a private 0700
 * folder beside the final path (nobody else can reach the socket there), set mode and group,
 * and then publish it at the final path with link(2), which, unlike rename(2), refuses to
 * replace a file that appeared there meanwhile. The private folder is removed at once.
 * HAProxy publishes its sockets by renaming a bound socket the same way. No umask juggling.
 */
export async function bindSocket(server: Server, socketPath: string, mode: number, gid: number | undefined): Promise<BoundSocket> {
  const dir = path.dirname(socketPath)
  const privateDir = await fsp.mkdtemp(path.join(dir, `.${path.basename(socketPath)}.`))
  const tmpPath = path.join(privateDir, 's')
  try {
    await fsp.chmod(privateDir, 0o700)
    await listen(server, { path: tmpPath, backlog: 511 })
    await fsp.chmod(tmpPath, mode)
    if (gid !== undefined) await fsp.chown(tmpPath, process.getuid?.() ?? -1, gid)
    try {
      await fsp.link(tmpPath, socketPath)
      await fsp.unlink(tmpPath)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') throw new SocketInUseError(socketPath, undefined, 'another socket appeared at', { cause: err })
      throw new UnsafeSocketPathError(
        socketPath,
        `cannot publish the socket with link(2) (${code}); put the socket on a filesystem with hard links, such as /run (tmpfs)`,
        { cause: err },
      )
    }
    const st = await fsp.lstat(socketPath)
    return { ino: st.ino }
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()))
    throw err
  } finally {
    await fsp.rm(privateDir, { recursive: true, force: true })
  }
}

/** Remove the socket only if it is still the one we published (same inode). */
export async function unlinkIfOurs(socketPath: string, ino: number): Promise<boolean> {
  try {
    const st = await fsp.lstat(socketPath)
    if (!st.isSocket() || st.ino !== ino) return false
    await fsp.unlink(socketPath)
    return true
  } catch {
    return false
  }
}
