import diagnostics_channel from 'node:diagnostics_channel'
import type { Registry } from 'prom-client'
import { parseString, rejectUnknown } from '@naaccord/ipc-shared'
import type { IpcClient } from '../client.js'
import { CLIENT_REQUEST_CHANNEL, type ClientRequestEvent } from '../client-events.js'
import type { SwappableDispatcher } from '../request/dispatcher.js'

export interface ClientMetricsOptions {
  /** The prom-client registry to add to (the web server's, served on its own metrics route). */
  register: Registry
  /** Metric name prefix. Default `naaccord_ipc_client_`. */
  prefix?: string
}

export interface ClientMetrics {
  /** Stop counting (the metrics stay registered). */
  close(): void
}

/**
 * Prometheus metrics of one client, added to your registry (prom-client is loaded only here):
 * `..._requests_total{method,outcome}` (ok, error), `..._retries_total{code}`,
 * `..._errors_total{code}` (IpcError codes), `..._pool_connections` (open connections of the
 * current pool). Two clients need two prefixes (or two registries).
 *
 * @example
 * const register = new Registry()
 * const services = createClient({ socketPath })
 * await clientMetrics(services, { register })
 * app.get('/metrics', async (_req, res) => res.type(register.contentType).send(await register.metrics()))
 */
export async function clientMetrics(client: IpcClient, options: ClientMetricsOptions): Promise<ClientMetrics> {
  rejectUnknown('clientMetrics', options, ['register', 'prefix'])
  const prefix = parseString('prefix', options.prefix ?? 'naaccord_ipc_client_')
  const prom = await import('prom-client')
  const registers = [options.register]
  const requests = new prom.Counter({ name: `${prefix}requests_total`, help: 'Finished requests (after retries), by method and outcome.', labelNames: ['method', 'outcome'], registers })
  const retries = new prom.Counter({ name: `${prefix}retries_total`, help: 'Retries, by the error code that caused them.', labelNames: ['code'], registers })
  const errors = new prom.Counter({ name: `${prefix}errors_total`, help: 'Failed requests, by error code.', labelNames: ['code'], registers })
  new prom.Gauge({
    name: `${prefix}pool_connections`,
    help: 'Open connections of the client pool.',
    registers,
    collect() {
      this.set((client.dispatcher as SwappableDispatcher).current?.stats.connected ?? 0)
    },
  })
  const onEvent = (m: unknown) => {
    const e = m as ClientRequestEvent
    if (e.options !== client.options) return
    if (e.outcome === 'retry') retries.inc({ code: e.code ?? 'unknown' })
    else {
      requests.inc({ method: e.method, outcome: e.outcome })
      if (e.outcome === 'error') errors.inc({ code: e.code ?? 'unknown' })
    }
  }
  diagnostics_channel.subscribe(CLIENT_REQUEST_CHANNEL, onEvent)
  return { close: () => void diagnostics_channel.unsubscribe(CLIENT_REQUEST_CHANNEL, onEvent) }
}
