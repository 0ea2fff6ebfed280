import type { Dispatcher } from 'undici'
import { createPool, createDispatcher } from './request/dispatcher.js'
import { ClientCalls, type CallOptions, type RequestOptions } from './request/calls.js'
import { loadClientTlsMaterial, watchClientTlsMaterial } from './connect/tls-material.js'
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js'
import type { IpcResponse } from './request/response.js'
import { warnWeakenedSecurity } from './security-warnings.js'

export type { Body, CallOptions, RequestOptions } from './request/calls.js'

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
  const log = opts.logger
  const material = loadClientTlsMaterial(opts)
  warnWeakenedSecurity(opts)
  const dispatcher = createDispatcher(opts, material)
  const calls = new ClientCalls(opts, dispatcher)
  const watch = watchClientTlsMaterial(opts, material, (next) => {
    dispatcher.swap(createPool(opts, next)).catch((err: unknown) => log.warn({ err }, 'closing the previous pool failed'))
  })
  return {
    options: opts,
    dispatcher,
    request: (ro) => calls.request(ro),
    get: (path, co) => calls.call('GET', path, undefined, co),
    delete: (path, co) => calls.call('DELETE', path, undefined, co),
    post: (path, body, co) => calls.call('POST', path, body, co),
    put: (path, body, co) => calls.call('PUT', path, body, co),
    patch: (path, body, co) => calls.call('PATCH', path, body, co),
    async close() {
      calls.closed = true
      watch?.close()
      await dispatcher.close()
    },
    async destroy() {
      calls.closed = true
      watch?.close()
      await dispatcher.destroy()
    },
  }
}
