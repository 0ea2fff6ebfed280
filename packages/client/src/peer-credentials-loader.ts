import type net from 'node:net'
import { PeerCredentialsUnavailableError } from '@naaccord/ipc-shared'

/** Reads the kernel's credentials of the process at the other end of a Unix socket. */
export type ReadPeerCredentials = (socket: net.Socket) => { pid: number; uid: number; gid: number }

const PACKAGE = '@naaccord/ipc-peercred'
let loading: Promise<ReadPeerCredentials> | undefined

/**
 * `expectServer` is the only part of the client that needs the native addon, so the client does
 * not depend on it: @naaccord/ipc-peercred is an optional peer dependency, imported the first time a
 * client with `expectServer` connects. A client without `expectServer` never loads it.
 *
 * @throws {PeerCredentialsUnavailableError} (as a rejection) when the package is not installed.
 * @example
 * const read = await loadPeerCredentials()
 * const { uid } = read(socket)
 */
export function loadPeerCredentials(): Promise<ReadPeerCredentials> {
  loading ??= import(PACKAGE).then(
    (m: { getPeerCredentials: ReadPeerCredentials }) => m.getPeerCredentials,
    (err: unknown) => {
      loading = undefined // installing it later in a long-lived process is allowed
      const why = err instanceof Error ? err.message.split('\n', 1)[0] : String(err)
      throw new PeerCredentialsUnavailableError(
        `expectServer reads the server's uid from the kernel with the optional package ${PACKAGE}, which could not be imported (${why}); ` +
          `install it next to @naaccord/ipc-client ("npm install ${PACKAGE}"), or drop expectServer`,
        { cause: err },
      )
    },
  )
  return loading
}
