// What both bench children (servers.ts, web-child.ts) do with the run's control channel: answer
// CPU-time asks, stop on request with a normal exit (so that --cpu-prof writes its profile), exit
// with the parent, and report a failed start.
import type { ChildMessage, ChildRequest, EndpointName } from './protocol.js'

export const send = (message: ChildMessage): void => void process.send?.(message)

/**
 * Run a bench child: `main` starts its servers and sends 'ready'; `stop` closes them.
 *
 * @example
 * runChild(main, stop, { gate: (endpoint) => medianAndReset(endpoint) })
 */
export function runChild(
  main: () => Promise<void>,
  stop: () => Promise<void>,
  answers: { gate?: (endpoint: EndpointName) => { medianUs: number; connections: number } } = {},
): void {
  process.on('message', (raw: ChildRequest) => {
    if (raw.type === 'cpu') {
      const { user, system } = process.cpuUsage()
      send({ type: 'cpu', id: raw.id, micros: user + system })
    } else if (raw.type === 'gate' && answers.gate) {
      send({ type: 'gate', id: raw.id, ...answers.gate(raw.endpoint) })
    } else if (raw.type === 'stop') {
      // A normal exit (not a kill), so that --cpu-prof writes its profile; run.ts waits for it.
      void stop().finally(() => process.exit(0))
    }
  })
  process.on('disconnect', () => process.exit(0))
  main().catch((err: unknown) => {
    send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    process.exit(1)
  })
}
