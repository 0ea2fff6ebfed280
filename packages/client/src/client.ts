import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import {
  ClientClosedError,
  ENV,
  HttpStatusError,
  REQUEST_ID_HEADER,
  loadCaBundle,
  loadTlsMaterial,
  watchFiles,
  type FileWatch,
  type Logger,
} from '@naaccord/ipc-shared'
import { warnWhateverLevel } from '@naaccord/ipc-shared/logger'
import type { ClientTlsMaterial } from './connect/tls-options.js'
import { createDispatcher, createPool } from './request/dispatcher.js'
import { resolveCallOptions, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js'
import { readBody, wrapResponse, type IpcResponse } from './request/response.js'

export type Body = string | Buffer | Uint8Array | Readable | null | undefined

export interface RequestOptions {
  method?: string
  /** Path and query, e.g. "/reports/42?full=1". */
  path: string
  headers?: Record<string, string>
  /** A string, bytes or a stream (a stream is never retried); objects go through `post()` etc. as JSON. */
  body?: Body
  /** Abort from the caller's side (rejects with the signal's AbortError, not an IPC error). */
  signal?: AbortSignal
  /** Override the client's timeoutMs for this request. */
  timeoutMs?: number
  /** Override the client's retries for this request (0: no retry). */
  retries?: number
  /** Override the client's retryWindowMs for this request. */
  retryWindowMs?: number
}

export interface CallOptions extends Omit<RequestOptions, 'method' | 'path' | 'body'> {}

export interface IpcClient {
  /** The options in force after defaults and environment. */
  readonly options: ResolvedClientOptions
  /**
   * An undici Dispatcher over the socket with the client's retries and typed errors built in
   * (interceptors): `fetch('http://localhost/x', { dispatcher })`, `undici.request(url, { dispatcher })`.
   */
  readonly dispatcher: Dispatcher
  /** Send a request; resolves for any status. */
  request(options: RequestOptions): Promise<IpcResponse>
  get<T = unknown>(path: string, options?: CallOptions): Promise<T>
  delete<T = unknown>(path: string, options?: CallOptions): Promise<T>
  post<T = unknown>(path: string, body?: unknown, options?: CallOptions): Promise<T>
  put<T = unknown>(path: string, body?: unknown, options?: CallOptions): Promise<T>
  patch<T = unknown>(path: string, body?: unknown, options?: CallOptions): Promise<T>
  /** Let in-flight requests finish, then close connections. */
  close(): Promise<void>
  /** Abort everything now. */
  destroy(): Promise<void>
}

function loadMaterial(opts: ResolvedClientOptions): (ClientTlsMaterial & { files: readonly string[] }) | undefined {
  const t = opts.tls
  if (!t) return undefined
  // The CA is loaded on its own: it verifies the server, it is not the issuer check of our pair.
  const ca = t.ca === undefined ? undefined : loadCaBundle('tls.ca', t.ca)
  const pair = t.cert === undefined ? undefined : loadTlsMaterial('tls', { cert: t.cert, key: t.key, ca: undefined })
  const files = [...(pair?.files ?? []), ...(ca?.file ? [ca.file] : [])]
  return { ca: ca?.pem, cert: pair?.cert, key: pair?.key, files }
}

/**
 * Create a client for a naaccord-ipc server: HTTP over the Unix socket (or TCP + TLS) with a
 * keep-alive pool, timeouts, retries of idempotent requests and typed errors.
 *
 * @example
 * import { createClient } from '@naaccord/ipc-client'
 * const services = createClient({ socketPath: '/run/naaccord/service.sock', expectServer: { uid: 998 } })
 * const report = await services.get('/reports/42')
 */
export function createClient(options: ClientOptions = {}): IpcClient {
  const opts = resolveClientOptions(options)
  const log: Logger = opts.logger
  let material = loadMaterial(opts)
  // Downgrades are said at creation whatever the log level (a process warning with logger: false).
  if (opts.transport === 'unix' && !opts.tls && !opts.acknowledgePlaintext) {
    warnWhateverLevel(log, { socketPath: opts.socketPath }, 'plaintext HTTP over the Unix socket (protected by file mode, not encrypted); add tls for defence in depth, or acknowledgePlaintext: true to accept it by name')
  }
  if (opts.transport === 'tcp' && !opts.tls) {
    warnWhateverLevel(
      log,
      { url: opts.target },
      `plaintext HTTP over TCP to ${opts.target} (option url or ${ENV.url}; to a host other than loopback only with allowPlaintextRemote): requests and answers travel unencrypted and unauthenticated to whatever listens on that port; use https:// with tls`,
    )
  }
  if (opts.tls?.insecureSkipVerify) {
    warnWhateverLevel(log, { target: opts.target }, 'TLS VERIFICATION IS OFF for this client (tls.insecureSkipVerify): any server can impersonate the services server. Development only.')
  }
  if (opts.serverCheck && opts.serverCheck.processUids === undefined) {
    warnWhateverLevel(
      log,
      { socketPath: opts.socketPath, setting: 'expectServer', value: false },
      `security weakened: the kernel check of the server process is OFF for ${opts.target} (expectServer: false); the socket path is still checked, but a process of a trusted uid's making is not told apart from the services server`,
    )
  }
  if (opts.serverCheck && opts.serverCheck.source !== 'default') {
    // Naming another uid widens whom the client trusts: said once, with where it came from.
    log.info({ socketPath: opts.socketPath, trustedServerUids: opts.serverCheck.processUids && [...opts.serverCheck.processUids], source: opts.serverCheck.source }, 'server check: the socket, its folders and the listening process may belong to these uids')
  }
  const override = process.env[ENV.peerAddon]
  if (opts.serverCheck?.processUids !== undefined && override !== undefined && override.trim() !== '') {
    warnWhateverLevel(
      log,
      { setting: 'peerCredentialsAddon', value: override, source: `env:${ENV.peerAddon}` },
      `security weakened: ${ENV.peerAddon}=${override} replaces the native addon that checks the server process (a test hook; never set it in production). It is loaded only if it is a .node file owned by this uid or root in a folder nobody else can change`,
    )
  }
  const dispatcher = createDispatcher(opts, material)
  let closed = false

  let watch: FileWatch | undefined
  const shouldWatch = opts.tls?.watch ?? true
  if (material && shouldWatch && material.files.length > 0) {
    watch = watchFiles(material.files, () => {
      try {
        const next = loadMaterial(opts)!
        if (next.cert === material!.cert && next.key === material!.key && next.ca === material!.ca) return
        material = next
        dispatcher.swap(createPool(opts, next)).catch((err: unknown) => log.warn({ err }, 'closing the previous pool failed'))
        log.info({ files: next.files }, 'client TLS files reloaded; new connections use them')
      } catch (err) {
        log.error({ err }, 'new client TLS files rejected; the current ones stay in use')
      }
    })
  }

  const hasDefaultHeaders = Object.keys(opts.headers).length > 0

  /**
   * The request path, kept lean (bench/client-overhead.ts measures each step): `headers` is a
   * fresh object owned here, merged once; the request id is added only when absent.
   */
  async function send(method: string, path: string, headers: Record<string, string>, body: Body, co: CallOptions): Promise<IpcResponse> {
    if (closed) throw new ClientClosedError(opts.target)
    const ipc = resolveCallOptions(co)
    if (headers[REQUEST_ID_HEADER] === undefined) headers[REQUEST_ID_HEADER] = randomUUID()
    const dispatchOptions: Dispatcher.RequestOptions & { ipc?: typeof ipc } = {
      origin: opts.origin,
      path,
      method: method as Dispatcher.HttpMethod,
      headers,
      body: (body ?? null) as Dispatcher.DispatchOptions['body'],
      signal: co.signal,
    }
    if (co.timeoutMs !== undefined) {
      dispatchOptions.headersTimeout = co.timeoutMs
      dispatchOptions.bodyTimeout = co.timeoutMs
    }
    if (ipc !== undefined) dispatchOptions.ipc = ipc
    return wrapResponse(await dispatcher.request(dispatchOptions))
  }

  function ownHeaders(given: Record<string, string> | undefined): Record<string, string> {
    if (!hasDefaultHeaders) return given === undefined ? {} : { ...given }
    return given === undefined ? { ...opts.headers } : { ...opts.headers, ...given }
  }

  function request(ro: RequestOptions): Promise<IpcResponse> {
    const method = ro.method === undefined ? 'GET' : ro.method.toUpperCase()
    return send(method, ro.path, ownHeaders(ro.headers), ro.body, ro)
  }

  async function call<T>(method: string, path: string, body: unknown, co: CallOptions = {}): Promise<T> {
    const headers = ownHeaders(co.headers)
    headers.accept ??= 'application/json'
    let payload: Body
    if (body !== undefined) {
      payload = JSON.stringify(body)
      headers['content-type'] ??= 'application/json'
    }
    const res = await send(method, path, headers, payload, co)
    const parsed = await readBody(res)
    if (res.status < 200 || res.status >= 300) throw new HttpStatusError(method, path, res.status, parsed, res.headers)
    return parsed as T
  }

  return {
    options: opts,
    dispatcher,
    request,
    get: (path, co) => call('GET', path, undefined, co),
    delete: (path, co) => call('DELETE', path, undefined, co),
    post: (path, body, co) => call('POST', path, body, co),
    put: (path, body, co) => call('PUT', path, body, co),
    patch: (path, body, co) => call('PATCH', path, body, co),
    async close() {
      closed = true
      watch?.close()
      await dispatcher.close()
    },
    async destroy() {
      closed = true
      watch?.close()
      await dispatcher.destroy()
    },
  }
}
