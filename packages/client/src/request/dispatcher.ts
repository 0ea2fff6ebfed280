import { Dispatcher, Pool } from 'undici'
import { ClientClosedError } from '@naaccord/ipc-shared'
import type { ResolvedClientOptions } from '../options.js'
import { createConnector } from '../connect/connector.js'
import type { ClientTlsMaterial } from '../connect/tls-options.js'
import { ipcInterceptor, type IpcRequest, type IpcRequestUnits } from './ipc-request.js'
import { RequestDiagnostics } from './request-diagnostics.js'
import { RetryPolicy } from './retry-policy.js'

/** One undici Pool over our connector: keep-alive, bounded connections, no pipelining. */
export function createPool(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): Pool {
  return new Pool(opts.origin, {
    connections: opts.connections,
    pipelining: 1,
    // Shorter than the server's keep-alive timeout (10 s by default): in HTTP/1.1 the side that
    // closes an idle connection should be the client, so a request never races the server's close.
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    // Caps the server's Keep-Alive hint too, so the client always closes idle connections first.
    keepAliveMaxTimeout: opts.keepAliveTimeoutMs,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: createConnector(opts, material),
  })
}

const EVENTS = ['connect', 'disconnect', 'connectionError', 'drain'] as const

/**
 * The client's dispatcher: typed errors and retries (`ipcInterceptor`) around the current Pool, so
 * that every way of calling through it (`client.get()`, `fetch(url, { dispatcher })`,
 * `undici.request(url, { dispatcher })`) behaves the same. Certificate rotation puts a new Pool
 * in place while the old one finishes its in-flight requests. It forwards undici's events
 * ('connect', 'disconnect', 'connectionError', 'drain') of every pool it made, with itself first
 * in `targets` (as undici's Agent does), and close()/destroy() reach every pool still open.
 *
 * Why not `pool.compose(interceptor)`: compose hands an interceptor undici 7's newer handler
 * interface, and undici's own request() and fetch() handlers speak the older one, so every
 * response would have its headers converted twice (parsed to an object, then back to raw
 * buffers). Applying the interceptor by hand around the pool's dispatch keeps the core
 * interface end to end: same behaviour, no per-request conversion (bench/client-overhead.ts
 * measures it).
 */
export class SwappableDispatcher extends Dispatcher {
  private pool: Pool
  private readonly pools = new Set<Pool>()
  private readonly units: IpcRequestUnits
  private readonly intercepted: Dispatcher.Dispatch

  constructor(initial: Pool, units: IpcRequestUnits) {
    super()
    this.units = units
    this.pool = this.adopt(initial)
    this.intercepted = ipcInterceptor(units)((opts, handler) => this.pool.dispatch(opts, handler))
  }

  get current(): Pool {
    return this.pool
  }

  private adopt(pool: Pool): Pool {
    this.pools.add(pool)
    const emitter = pool as unknown as NodeJS.EventEmitter
    for (const name of EVENTS) {
      emitter.on(name, (origin: URL, targets: Dispatcher[], ...rest: unknown[]) => (this as unknown as NodeJS.EventEmitter).emit(name, origin, [this, ...targets], ...rest))
    }
    return pool
  }

  /** Put `next` in place; the old pool drains (in-flight requests finish) and closes. */
  swap(next: Pool): Promise<void> {
    const old = this.pool
    this.pool = this.adopt(next)
    return old.close().finally(() => this.pools.delete(old))
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.intercepted(options, handler)
  }

  private cancelWaiting(): void {
    const err = new ClientClosedError(this.units.errors.target)
    for (const request of [...this.units.waiting]) request.cancel(err)
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    this.cancelWaiting()
    const p = Promise.all([...this.pools].map((pool) => pool.close())).then(() => undefined)
    if (callback) void p.then(callback, callback)
    else return p
  }

  override destroy(): Promise<void>
  override destroy(err: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(err: Error | null, callback: () => void): void
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null)
    const callback = typeof a === 'function' ? a : b
    this.cancelWaiting()
    const p = Promise.all([...this.pools].map((pool) => pool.destroy(err))).then(() => undefined)
    if (callback) void p.then(callback, callback)
    else return p
  }
}

/**
 * The dispatcher of a client, from its resolved options.
 *
 * @example
 * const dispatcher = createDispatcher(opts, material)
 * await fetch('http://localhost/reports', { dispatcher })
 */
export function createDispatcher(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): SwappableDispatcher {
  const units: IpcRequestUnits = {
    policy: new RetryPolicy({ retries: opts.retries, retryWindowMs: opts.retryWindowMs, retryDelayMs: opts.retryDelayMs, maxRetryDelayMs: opts.maxRetryDelayMs }),
    errors: { target: opts.target, timeoutMs: opts.timeoutMs, connectTimeoutMs: opts.connectTimeoutMs, tls: opts.tls },
    diagnostics: new RequestDiagnostics(opts),
    waiting: new Set<IpcRequest>(),
  }
  return new SwappableDispatcher(createPool(opts, material), units)
}
