import { REQUEST_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER, parseTraceparent, validTracestate } from '@naaccord/ipc-shared'

/** Anything with Node-style headers: the web server's incoming request (Express, Fastify's `raw`, `http`). */
export interface HasHeaders {
  headers: Record<string, string | string[] | undefined>
}

/**
 * The headers that carry one request's trace from the web server to the services server: W3C
 * `traceparent` and `tracestate` (only when `traceparent` is well-formed) and `x-request-id`.
 * Pass them on each call so the services log shows the same trace id.
 *
 * @example
 * app.get('/report/:id', async (req, res) => {
 *   res.json(await services.get(`/reports/${req.params.id}`, { headers: propagationHeaders(req) }))
 * })
 */
export function propagationHeaders(incoming: HasHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v)
  const traceparent = first(incoming.headers[TRACEPARENT_HEADER])
  if (parseTraceparent(traceparent)) {
    out[TRACEPARENT_HEADER] = traceparent!.trim()
    const tracestate = first(incoming.headers[TRACESTATE_HEADER])
    if (validTracestate(tracestate)) out[TRACESTATE_HEADER] = tracestate
  }
  const id = first(incoming.headers[REQUEST_ID_HEADER])
  if (id !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(id)) out[REQUEST_ID_HEADER] = id
  return out
}
