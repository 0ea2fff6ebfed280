import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { util, type Dispatcher } from 'undici'

/**
 * undici's handler interface as the core calls it (onConnect, onHeaders with raw headers...).
 * undici 7 marks it legacy but its own `request()` and `fetch()` handlers still use it, and
 * speaking it here means no conversion of the headers between the two forms on every response.
 */
export interface CoreHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void
  onUpgrade?(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void
  onResponseStarted?(): void
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean
  onData?(chunk: Buffer): boolean
  onComplete?(trailers: string[] | null): void
  onError?(err: Error): void
  onBodySent?(chunk: unknown, total?: number): void
  onRequestSent?(): void
}

/**
 * A caller's handler written for undici 7's newer interface (onRequestStart, onResponseStart...),
 * seen through the core interface IpcRequest speaks (what undici's own UnwrapHandler does).
 */
class NewApiHandler implements CoreHandler, Dispatcher.DispatchController {
  private abortFn: ((err?: Error) => void) | undefined
  private resumeFn: (() => void) | undefined
  private isPaused = false
  private abortedWith: Error | null = null

  constructor(private readonly h: Dispatcher.DispatchHandler) {}

  get aborted(): boolean {
    return this.abortedWith !== null
  }
  get paused(): boolean {
    return this.isPaused
  }
  get reason(): Error | null {
    return this.abortedWith
  }
  abort(reason: Error): void {
    if (this.abortedWith !== null) return
    this.abortedWith = reason
    this.abortFn?.(reason)
  }
  pause(): void {
    this.isPaused = true
  }
  resume(): void {
    if (!this.isPaused) return
    this.isPaused = false
    this.resumeFn?.()
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.abortFn = abort
    this.h.onRequestStart?.(this, context)
  }
  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.h.onRequestUpgrade?.(this, statusCode, util.parseHeaders(rawHeaders ?? []) as IncomingHttpHeaders, socket)
  }
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.resumeFn = resume
    this.h.onResponseStart?.(this, statusCode, util.parseHeaders(rawHeaders) as IncomingHttpHeaders, statusText)
    return !this.isPaused
  }
  onData(chunk: Buffer): boolean {
    this.h.onResponseData?.(this, chunk)
    return !this.isPaused
  }
  onComplete(trailers: string[] | null): void {
    this.h.onResponseEnd?.(this, util.parseHeaders(trailers ?? []) as IncomingHttpHeaders)
  }
  onError(err: Error): void {
    this.h.onResponseError?.(this, err)
  }
}

/** The caller's handler in the core interface, whichever interface it was written for. */
export function coreHandler(handler: Dispatcher.DispatchHandler): CoreHandler {
  return typeof handler.onRequestStart === 'function' ? new NewApiHandler(handler) : (handler as CoreHandler)
}
