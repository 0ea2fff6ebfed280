// What the load generator (run.ts) and the server child (servers.ts) say to each other over the
// child's IPC channel. The channel is outside every measured socket, so control traffic is never
// counted as a request.

/** One listening server inside the child. */
export type EndpointName =
  | 'bare-tcp-plain'
  | 'bare-unix-plain'
  | 'bare-tcp-tls'
  | 'bare-unix-tls'
  | 'serve-tcp-plain'
  | 'serve-unix-plain'
  | 'serve-tcp-tls'
  | 'serve-unix-tls'
  | 'express-unix-plain'
  | 'serve-unix-plain-nopeer'
  | 'serve-unix-plain-nolog'

export interface Endpoint {
  readonly name: EndpointName
  readonly transport: 'tcp' | 'unix'
  readonly tls: boolean
  /** Unix transport: the socket path. */
  readonly socketPath?: string
  /** TCP transport: the port on 127.0.0.1. */
  readonly port?: number
}

export type Endpoints = Readonly<Record<EndpointName, Endpoint>>

/** Handed to the child as its one argument (JSON). */
export interface ServerChildConfig {
  /** A private folder (0700) for sockets, locks and the request log. */
  readonly workDir: string
  readonly pki: { readonly ca: string; readonly cert: string; readonly key: string }
}

export type ChildRequest = { readonly id: number; readonly type: 'cpu' } | { readonly id: number; readonly type: 'stop' }

export type ChildMessage =
  | { readonly type: 'ready'; readonly endpoints: Endpoints; readonly pid: number }
  | { readonly type: 'cpu'; readonly id: number; readonly micros: number }
  | { readonly type: 'failed'; readonly message: string }
