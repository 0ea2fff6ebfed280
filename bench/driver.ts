import type { LatencyRecorder } from './latency.js'
import type { LoopResult } from './closed-loop.js'

/** Generates the load of one row: run for a while (recording latencies when asked), then close. */
export interface Driver {
  run(durationMs: number, latency?: LatencyRecorder): Promise<LoopResult>
  close(): Promise<void>
}

/** Client-side TLS material (PEM text) for mutual TLS: trust our CA, present the client certificate. */
export interface ClientTls {
  readonly ca: string
  readonly cert: string
  readonly key: string
}
