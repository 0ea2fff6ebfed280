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
  // A second serve() configured exactly as serve-unix-plain: the A/A pair that shows the noise floor.
  | 'serve-unix-plain-twin'
  // The services side of the whole hop (server child).
  | 'svc-express-tcp'
  | 'svc-serve-unix'
  | 'svc-serve-unix-tls'
  // The public web server of the whole hop, one per way of calling services (web child).
  | 'hop-agent'
  | 'hop-undici'
  | 'hop-ours'
  | 'hop-ours-tls'

export interface Endpoint {
  readonly name: EndpointName
  readonly transport: 'tcp' | 'unix'
  readonly tls: boolean
  /** Unix transport: the socket path. */
  readonly socketPath?: string
  /** TCP transport: the port on 127.0.0.1. */
  readonly port?: number
  /** The path the load asks for; default "/". */
  readonly path?: string
}

export type Endpoints = Readonly<Partial<Record<EndpointName, Endpoint>>>

/** Handed to the child as its one argument (JSON). */
export interface ServerChildConfig {
  /** A private folder (0700) for sockets, locks and the request log. */
  readonly workDir: string
  readonly pki: { readonly ca: string; readonly cert: string; readonly key: string }
}

/** Handed to the web child (bench/web-child.ts) as its one argument (JSON). */
export interface WebChildConfig {
  readonly pki: { readonly ca: string; readonly cert: string; readonly key: string }
  /** The services it calls: Express on TCP, serve() on the socket, serve() on the socket with mutual TLS. */
  readonly upstream: { readonly expressPort: number; readonly socketPath: string; readonly tlsSocketPath: string }
}

export type ChildRequest =
  | { readonly id: number; readonly type: 'cpu' }
  | { readonly id: number; readonly type: 'stop' }
  /** The median time a listener spent in its 'connection' handling (gate + HTTP set-up) since the last ask; resets. */
  | { readonly id: number; readonly type: 'gate'; readonly endpoint: EndpointName }

export type ChildMessage =
  | { readonly type: 'ready'; readonly endpoints: Endpoints; readonly pid: number }
  | { readonly type: 'cpu'; readonly id: number; readonly micros: number }
  | { readonly type: 'gate'; readonly id: number; readonly medianUs: number; readonly connections: number }
  | { readonly type: 'failed'; readonly message: string }
