import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { util, type Dispatcher } from 'undici'
import { ClientClosedError, IpcError, type Logger } from '@naaccord/ipc-shared'
import { publishRequest, requestSubscribed } from '../client-events.js'
import { mapRequestError, type MapContext } from './error-map.js'
import type { ResolvedClientOptions } from '../options.js'
import { IDEMPOTENT, isRetryable, nextRetryDelay, type RetryBudget } from './retry.js'

/**
 * Per-request overrides, carried on the dispatch options as `ipc`: what `client.get(path, {
 * retries, retryWindowMs })` sets, and what `undici.request(url, { dispatcher, ipc: {...} })`
 * may set. Validated by `resolveCallOptions` in options.ts.
 */
export interface IpcDispatchOverrides {
  retries?: number
  retryWindowMs?: number
}

/** What the interceptor needs from the resolved options, plus the set of requests waiting to retry. */
export interface InterceptorSettings extends RetryBudget, MapContext {
  /** The client's options, named in the events published for metrics (client-events.ts). */
  readonly options: ResolvedClientOptions
  readonly logger: Logger
  /** Requests between attempts (a timer, no connection): failed at once by close()/destroy(). */
  readonly waiting: Set<IpcRequest>
}

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
 * One request through the dispatcher, across its attempts: it is the handler undici calls for
 * each attempt and forwards to the caller's handler once.
 *
 * Error mapping: every error becomes one of our classes (the caller's own abort passes through).
 * Retries: see `isRetryable` (what) and `nextRetryDelay` (how long). "Sent" means undici started
 * writing this attempt (onConnect); before that, e.g. while the request waited in the pool for
 * a connection that failed, nothing left and any method may be tried again. For a request that
 * may be retried after sending, the response head is held until the first body byte (or the
 * end), so a body that fails before any byte reached the caller is retried too.
 */
export class IpcRequest implements CoreHandler {
  private readonly budget: RetryBudget
  private readonly method: string
  private readonly replayable: boolean
  /** Hold the head until the first byte: only worth it when a retry after sending is possible. */
  private readonly holdHead: boolean
  private readonly timeoutMs: number
  private attempt = 0
  private startedAt = 0
  private sent = false
  private delivered = false
  private connected = false
  // The held head, in fields (no tuple per request); heldResume is set while a head is held.
  private heldStatus = 0
  private heldHeaders: Buffer[] | undefined
  private heldResume: (() => void) | undefined
  private heldText = ''
  private abortAttempt: ((err?: Error) => void) | undefined
  private abortReason: Error | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly settings: InterceptorSettings,
    private readonly dispatch: Dispatcher.Dispatch,
    private readonly opts: Dispatcher.DispatchOptions & { ipc?: IpcDispatchOverrides },
    private readonly handler: CoreHandler,
  ) {
    const o = opts.ipc
    this.budget = o === undefined ? settings : { ...settings, ...o }
    this.method = opts.method
    const body = opts.body
    this.replayable = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array
    this.holdHead = this.replayable && this.budget.retries > 0 && IDEMPOTENT.has(this.method)
    this.timeoutMs = opts.headersTimeout ?? settings.timeoutMs
  }

  start(): boolean {
    this.startedAt = Date.now()
    return this.dispatch(this.opts, this as Dispatcher.DispatchHandler)
  }

  /** Fail a request that waits between attempts (close/destroy of the dispatcher). */
  cancel(err: Error): void {
    if (this.timer !== undefined) this.fail(err)
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.abortAttempt = abort
    this.sent = true
    if (this.abortReason !== undefined) return abort(this.abortReason)
    this.connectDownstream(context)
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.delivered = true
    this.handler.onUpgrade?.(statusCode, rawHeaders, socket)
  }

  onResponseStarted(): void {
    this.handler.onResponseStarted?.()
  }

  onBodySent(chunk: unknown, total?: number): void {
    this.handler.onBodySent?.(chunk, total)
  }

  onRequestSent(): void {
    this.handler.onRequestSent?.()
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.holdHead) {
      this.heldStatus = statusCode
      this.heldHeaders = rawHeaders
      this.heldResume = resume
      this.heldText = statusText
      return true
    }
    this.delivered = true
    this.published('ok', undefined)
    return this.handler.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true
  }

  onData(chunk: Buffer): boolean {
    if (this.heldResume !== undefined && !this.flushHead()) {
      this.handler.onData?.(chunk)
      return false
    }
    return this.handler.onData?.(chunk) ?? true
  }

  onComplete(trailers: string[] | null): void {
    if (this.heldResume !== undefined) this.flushHead()
    this.handler.onComplete?.(trailers)
  }

  onError(err: Error): void {
    if (this.abortReason !== undefined) return this.fail(err) // the caller's abort, untouched
    const mapped = mapRequestError(err, this.settings, this.timeoutMs) as Error
    if (!this.delivered && this.replayable && isRetryable(mapped, this.method, this.sent)) {
      const delay = nextRetryDelay(this.attempt, Date.now() - this.startedAt, this.budget)
      if (delay !== undefined) return this.retryAfter(delay, mapped)
    }
    this.fail(mapped)
  }

  /** The abort the caller's handler holds: the attempt in progress, or the wait between two. */
  private readonly abort = (err?: Error): void => {
    if (this.abortReason !== undefined) return
    this.abortReason = err ?? new Error('aborted')
    if (this.timer !== undefined) this.fail(this.abortReason)
    else this.abortAttempt?.(this.abortReason)
  }

  private retryAfter(delay: number, err: Error): void {
    this.published('retry', err)
    this.attempt++
    this.sent = false
    this.heldHeaders = undefined
    this.heldResume = undefined
    this.abortAttempt = undefined
    // The caller's handler gets its abort now, so that it works during the wait.
    this.connectDownstream(undefined)
    if (this.abortReason !== undefined) return this.fail(this.abortReason)
    const log = this.settings.logger
    if (log.isLevelEnabled('debug')) {
      log.debug({ code: (err as IpcError).code, attempt: this.attempt, delay, method: this.method, path: this.opts.path.split('?', 1)[0] }, 'retrying')
    }
    this.settings.waiting.add(this)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.settings.waiting.delete(this)
      this.dispatch(this.opts, this as Dispatcher.DispatchHandler)
    }, delay)
  }

  private fail(err: Error): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.settings.waiting.delete(this)
    }
    if (this.attempt > 0 && err instanceof IpcError && !(err instanceof ClientClosedError)) {
      const elapsed = Date.now() - this.startedAt
      err.attempts = this.attempt + 1
      err.elapsedMs = elapsed
      err.message += ` (gave up after ${this.attempt + 1} attempts in ${elapsed} ms; retries ${this.budget.retries}, retryWindowMs ${this.budget.retryWindowMs})`
    }
    this.published('error', err)
    this.handler.onError?.(err)
  }

  private connectDownstream(context: unknown): void {
    if (this.connected) return
    this.connected = true
    this.handler.onConnect?.(this.abort, context)
  }

  /** Give the caller the held head; false when it asked to pause. */
  private flushHead(): boolean {
    const resume = this.heldResume!
    const rawHeaders = this.heldHeaders!
    this.heldResume = undefined
    this.heldHeaders = undefined
    this.delivered = true
    this.published('ok', undefined)
    return this.handler.onHeaders?.(this.heldStatus, rawHeaders, resume, this.heldText) ?? true
  }

  private published(outcome: 'ok' | 'error' | 'retry', err: Error | undefined): void {
    if (!requestSubscribed()) return
    publishRequest({ options: this.settings.options, method: this.method, outcome, code: (err as { code?: string } | undefined)?.code, attempts: this.attempt + 1 })
  }
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
