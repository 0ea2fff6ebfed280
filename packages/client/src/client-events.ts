import diagnostics_channel from 'node:diagnostics_channel'
import type { ResolvedClientOptions } from './options.js'

/** One finished call of a client (after its retries), or one retry. */
export interface ClientRequestEvent {
  /** The options of the client that made it (`client.options`): tells clients apart. */
  readonly options: ResolvedClientOptions
  readonly method: string
  readonly outcome: 'ok' | 'error' | 'retry'
  /** `IpcError` code of a failure or of the failure that caused a retry. */
  readonly code?: string | undefined
  /** Attempts made so far (1 without retries). */
  readonly attempts: number
}

/**
 * Published for every finished request and every retry of every client, process-wide
 * (`node:diagnostics_channel`); `clientMetrics()` counts them.
 *
 * @example
 * diagnostics_channel.subscribe(CLIENT_REQUEST_CHANNEL, (e) => console.log((e as ClientRequestEvent).outcome))
 */
export const CLIENT_REQUEST_CHANNEL = 'naaccord-ipc:client:request'
const channel = diagnostics_channel.channel(CLIENT_REQUEST_CHANNEL)

/** Whether anyone listens: check before building an event, so that no subscriber costs nothing per request. */
export function requestSubscribed(): boolean {
  return channel.hasSubscribers
}

/** Tell subscribers (if any) about a request outcome. */
export function publishRequest(event: ClientRequestEvent): void {
  if (channel.hasSubscribers) channel.publish(event)
}
