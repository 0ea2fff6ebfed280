import type { IpcError } from '@naaccord/ipc-shared'
import { publishRequest, requestSubscribed } from '../client-events.js'
import type { ResolvedClientOptions } from '../options.js'

/**
 * What one client tells about its requests: each finished request and each retry on the
 * diagnostics channel (client-events.ts, counted by `clientMetrics()`), and a debug line per
 * retry. Nothing is built when nobody listens: this is on the request path.
 *
 * @example
 * const diagnostics = new RequestDiagnostics(opts)
 * diagnostics.outcome('GET', 'ok', undefined, 1)
 */
export class RequestDiagnostics {
  constructor(private readonly options: ResolvedClientOptions) {}

  /** A finished request ('ok', 'error') or a retry, after `attempts` attempts. */
  outcome(method: string, outcome: 'ok' | 'error' | 'retry', err: Error | undefined, attempts: number): void {
    if (!requestSubscribed()) return
    publishRequest({ options: this.options, method, outcome, code: (err as { code?: string } | undefined)?.code, attempts })
  }

  /** The debug line of a retry about to wait `delay` ms (the path without its query). */
  retrying(err: Error, attempt: number, delay: number, method: string, path: string): void {
    const log = this.options.logger
    if (log.isLevelEnabled('debug')) {
      log.debug({ code: (err as IpcError).code, attempt, delay, method, path: path.split('?', 1)[0] }, 'retrying')
    }
  }
}
