// The parts of autocannon 8 that bench/load.ts uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'
  import type { ConnectionOptions } from 'node:tls'

  namespace autocannon {
    interface Client extends EventEmitter {
      on(event: 'response', listener: (statusCode: number, bytes: number, durationMs: number, rate: number) => void): this
      on(event: string, listener: (...args: unknown[]) => void): this
    }
    interface Options {
      url: string
      socketPath?: string
      connections?: number
      pipelining?: number
      duration?: number
      sampleInt?: number
      timeout?: number
      headers?: Record<string, string>
      tlsOptions?: ConnectionOptions
      servername?: string
      setupClient?: (client: Client) => void
    }
    interface Result {
      errors: number
      timeouts: number
      non2xx: number
      resets: number
      duration: number
      latency: { p50: number; p99: number; average: number }
      requests: { average: number; total: number; sent: number }
    }
  }

  function autocannon(options: autocannon.Options, callback: (err: Error | null, result: autocannon.Result) => void): EventEmitter
  export default autocannon
}
