// The load of the real-engine tests (systemd, Docker): callers through the web server while the
// services side restarts, reloads or is killed.

export interface Outcome {
  method: 'GET' | 'POST'
  id: string
  ok: boolean
  pid?: number
  error?: string
  ms: number
  startedAt: number
}

/**
 * `workers` callers of GET /items/<id> and POST /items {id} on `base()` until stop(), each one
 * call at a time, every outcome recorded (the engine tests count failures and double executions
 * against the services app's ledger). `pauseAfterFailureMs`: a pause after a failed call, so a
 * caller does not spin while its target is down.
 */
export function load(base: () => string, workers: number, tag: string, pauseAfterFailureMs = 0): { stop: () => Promise<Outcome[]> } {
  const outcomes: Outcome[] = []
  let running = true
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; running; n++) {
      const method = n % 2 === 0 ? 'GET' : 'POST'
      const id = `${tag}-${w}-${n}`
      const startedAt = Date.now()
      try {
        const res =
          method === 'GET'
            ? await fetch(`${base()}/items/${id}`, { signal: AbortSignal.timeout(30_000) })
            : await fetch(`${base()}/items`, { method: 'POST', body: JSON.stringify({ id }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(30_000) })
        const body = (await res.json()) as { id?: string; pid?: number; error?: string; message?: string }
        const ok = res.status === 200 && body.id === id
        outcomes.push({ method, id, ok, ms: Date.now() - startedAt, startedAt, ...(ok ? { pid: body.pid } : { error: `${res.status} ${body.error ?? ''} ${body.message ?? ''}` }) })
      } catch (err) {
        outcomes.push({ method, id, ok: false, ms: Date.now() - startedAt, startedAt, error: String((err as Error).message) })
        if (pauseAfterFailureMs > 0) await new Promise((r) => setTimeout(r, pauseAfterFailureMs))
      }
    }
  }
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
  return {
    stop: async () => {
      running = false
      await done
      return outcomes
    },
  }
}
