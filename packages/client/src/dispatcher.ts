import { Dispatcher, Pool } from 'undici'
import type { ResolvedClientOptions } from './options.js'
import { createConnector, type ClientTlsMaterial } from './connector.js'

/** One undici Pool over our connector: keep-alive, bounded connections, no pipelining. */
export function createPool(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): Pool {
  return new Pool(opts.origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    // Caps the server's Keep-Alive hint too, so the client always closes idle connections first.
    keepAliveMaxTimeout: opts.keepAliveTimeoutMs,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: createConnector(opts, material),
  })
}

/**
 * A Dispatcher that forwards to the current Pool, so that certificate rotation can put a new
 * Pool in place while the old one finishes its in-flight requests. Users hold this one object
 * (`client.dispatcher`) for `fetch(url, { dispatcher })` or `undici.request`.
 */
export class SwappableDispatcher extends Dispatcher {
  #current: Pool

  constructor(initial: Pool) {
    super()
    this.#current = initial
  }

  get current(): Pool {
    return this.#current
  }

  /** Put `next` in place; the old pool drains (in-flight requests finish) and closes. */
  swap(next: Pool): Promise<void> {
    const old = this.#current
    this.#current = next
    return old.close()
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.#current.dispatch(options, handler)
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    const p = this.#current.close()
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
    const p = this.#current.destroy(err)
    if (callback) void p.then(callback, callback)
    else return p
  }
}
