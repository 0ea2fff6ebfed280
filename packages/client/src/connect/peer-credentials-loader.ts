import type net from 'node:net'
import { PeerCredentialsUnavailableError } from '@naaccord/ipc-shared'

/** Reads the kernel's credentials of the process at the other end of a Unix socket. */
export type ReadPeerCredentials = (socket: net.Socket) => { pid: number; uid: number; gid: number }

const PACKAGE = '@naaccord/ipc-peercred'
let loading: Promise<ReadPeerCredentials> | undefined

/**
 * The kernel check of the server process (on by default, see `expectServer`) is the only part of
 * the client that needs the native addon: @naaccord/ipc-peercred (a dependency, shipped prebuilt)
 * is imported the first time a client connects over the socket with that check on. Over TCP, or
 * with `expectServer: false`, it is never loaded. Fails closed: when it cannot be loaded, no
 * connection is made.
 *
 * @throws {PeerCredentialsUnavailableError} (as a rejection) when the package is not installed.
 * @example
 * const read = await loadPeerCredentials()
 * const { uid } = read(socket)
 */
export function loadPeerCredentials(): Promise<ReadPeerCredentials> {
  // A literal specifier, so that bundlers (esbuild, webpack) carry the addon's loader along.
  loading ??= import('@naaccord/ipc-peercred').then(
    (m: { getPeerIds: ReadPeerCredentials }) => m.getPeerIds,
    (err: unknown) => {
      loading = undefined // installing it later in a long-lived process is allowed
      const why = err instanceof Error ? err.message.split('\n', 1)[0] : String(err)
      throw new PeerCredentialsUnavailableError(
        `the client checks the server process's uid from the kernel before sending (expectServer) with ${PACKAGE}, which could not be imported (${why}); ` +
          `reinstall @naaccord/ipc-client with its dependencies ("npm install ${PACKAGE}"), or turn that check off by name with expectServer: false (the socket path check stays)`,
        { cause: err },
      )
    },
  )
  return loading
}
