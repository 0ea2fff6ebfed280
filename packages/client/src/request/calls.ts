import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { ClientClosedError, HttpStatusError, REQUEST_ID_HEADER } from '@naaccord/ipc-shared'
import { resolveCallOptions, type ResolvedClientOptions } from '../options.js'
import { readBody, wrapResponse, type IpcResponse } from './response.js'

export type Body = string | Buffer | Uint8Array | Readable | null | undefined

export interface RequestOptions {
  method?: string
  /** Path and query, e.g. "/reports/42?full=1". */
  path: string
  headers?: Record<string, string>
  /** A string, bytes or a stream (a stream is never retried); objects go through `post()` etc. as JSON. */
  body?: Body
  /** Abort from the caller's side (rejects with the signal's AbortError, not an IPC error). */
  signal?: AbortSignal
  /** Override the client's timeoutMs for this request. */
  timeoutMs?: number
  /** Override the client's retries for this request (0: no retry). */
  retries?: number
  /** Override the client's retryWindowMs for this request. */
  retryWindowMs?: number
}

export interface CallOptions extends Omit<RequestOptions, 'method' | 'path' | 'body'> {}

/**
 * The calls of one client (`request()`, and `get()`, `post()`... with JSON), turned into
 * dispatches through its dispatcher. The request path, kept lean (bench/client-overhead.ts
 * measures each step): `headers` is a fresh object owned here, merged once; the request id is
 * added only when absent.
 */
export class ClientCalls {
  /** Set by close()/destroy(): later calls fail with ClientClosedError. */
  closed = false
  private readonly hasDefaultHeaders: boolean

  constructor(
    private readonly opts: ResolvedClientOptions,
    private readonly dispatcher: Dispatcher,
  ) {
    this.hasDefaultHeaders = Object.keys(opts.headers).length > 0
  }

  /** Send a request; resolves for any status. */
  request(ro: RequestOptions): Promise<IpcResponse> {
    const method = ro.method === undefined ? 'GET' : ro.method.toUpperCase()
    return this.send(method, ro.path, this.ownHeaders(ro.headers), ro.body, ro)
  }

  /** A JSON call: `body` as JSON, the answer parsed; a status outside 2xx throws HttpStatusError. */
  async call<T>(method: string, path: string, body: unknown, co: CallOptions = {}): Promise<T> {
    const headers = this.ownHeaders(co.headers)
    headers.accept ??= 'application/json'
    let payload: Body
    if (body !== undefined) {
      payload = JSON.stringify(body)
      headers['content-type'] ??= 'application/json'
    }
    const res = await this.send(method, path, headers, payload, co)
    const parsed = await readBody(res)
    if (res.status < 200 || res.status >= 300) throw new HttpStatusError(method, path, res.status, parsed, res.headers)
    return parsed as T
  }

  private async send(method: string, path: string, headers: Record<string, string>, body: Body, co: CallOptions): Promise<IpcResponse> {
    if (this.closed) throw new ClientClosedError(this.opts.target)
    const ipc = resolveCallOptions(co)
    if (headers[REQUEST_ID_HEADER] === undefined) headers[REQUEST_ID_HEADER] = randomUUID()
    const dispatchOptions: Dispatcher.RequestOptions & { ipc?: typeof ipc } = {
      origin: this.opts.origin,
      path,
      method: method as Dispatcher.HttpMethod,
      headers,
      body: (body ?? null) as Dispatcher.DispatchOptions['body'],
      signal: co.signal,
    }
    if (co.timeoutMs !== undefined) {
      dispatchOptions.headersTimeout = co.timeoutMs
      dispatchOptions.bodyTimeout = co.timeoutMs
    }
    if (ipc !== undefined) dispatchOptions.ipc = ipc
    return wrapResponse(await this.dispatcher.request(dispatchOptions))
  }

  private ownHeaders(given: Record<string, string> | undefined): Record<string, string> {
    if (!this.hasDefaultHeaders) return given === undefined ? {} : { ...given }
    return given === undefined ? { ...this.opts.headers } : { ...this.opts.headers, ...given }
  }
}
