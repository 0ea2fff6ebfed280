import type { Dispatcher } from 'undici'

type Headers = Record<string, string | string[] | undefined>

/** What `client.request()` resolves to, whatever the status. */
export interface IpcResponse {
  status: number
  headers: Headers
  /** The body stream (undici's readable); consume it once, or call `dump()`. */
  body: Dispatcher.ResponseData['body']
  json<T = unknown>(): Promise<T>
  text(): Promise<string>
  arrayBuffer(): Promise<ArrayBuffer>
  /** Discard the body so the connection can be reused. */
  dump(): Promise<void>
}

class Response implements IpcResponse {
  // Declared, not class fields: V8 would define each as undefined before the constructor sets it
  // (one object per response; see head-holding-handler.ts for the measurement).
  declare readonly status: number
  declare readonly headers: Headers
  declare readonly body: Dispatcher.ResponseData['body']
  constructor(data: Dispatcher.ResponseData) {
    this.status = data.statusCode
    this.headers = data.headers as Headers
    this.body = data.body
  }
  json<T = unknown>(): Promise<T> {
    return this.body.json() as Promise<T>
  }
  text(): Promise<string> {
    return this.body.text()
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.body.arrayBuffer()
  }
  dump(): Promise<void> {
    return this.body.dump()
  }
}

/** One small object per response (no closures per call: this is the request path). */
export function wrapResponse(data: Dispatcher.ResponseData): IpcResponse {
  return new Response(data)
}

/** Read a body as JSON when it says it is JSON, else as text (empty -> undefined). */
export async function readBody(res: IpcResponse): Promise<unknown> {
  const type = String(res.headers['content-type'] ?? '')
  const text = await res.text()
  if (text.length === 0) return undefined
  if (type.includes('json')) {
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }
  return text
}
