import { performance } from 'node:perf_hooks'
import type { LatencyRecorder } from './latency.js'

export interface LoopResult {
  /** Requests that completed without error. */
  readonly completed: number
  readonly errors: number
  readonly firstError: string | undefined
  /** From the start to the last completed request, ms. */
  readonly elapsedMs: number
}

/**
 * A fixed-duration closed loop: `concurrency` workers, each sends a request, waits for the whole
 * response, and sends the next, until `durationMs` is up. Latency is one request's round trip.
 */
export async function closedLoop(
  once: () => Promise<void>,
  options: { concurrency: number; durationMs: number; latency?: LatencyRecorder },
): Promise<LoopResult> {
  const started = performance.now()
  const deadline = started + options.durationMs
  let completed = 0
  let errors = 0
  let firstError: string | undefined
  let last = started
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      try {
        await once()
      } catch (err) {
        errors++
        firstError ??= err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : String(err)
        // A failing target fails fast; do not spin on it for the whole duration.
        if (errors > 1000) return
        continue
      }
      last = performance.now()
      options.latency?.record(last - t0)
      completed++
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return { completed, errors, firstError, elapsedMs: last - started }
}
