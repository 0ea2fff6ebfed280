import type { Dispatcher } from 'undici'
import { AbortedError } from '@naaccord/ipc-shared'
import { coreHandler, type CoreHandler } from './core-handler.js'
import { mapRequestError, type MapContext } from './error-map.js'
import { HeadHoldingHandler } from './head-holding-handler.js'
import type { RequestDiagnostics } from './request-diagnostics.js'
import { isReplayable, type RetryBudget } from './retry.js'
import type { IpcDispatchOverrides, RetryPolicy } from './retry-policy.js'

/** The parts every request of one client shares: made once per client, each with one job. */
export interface IpcRequestUnits {
  /** Which failed attempts are tried again, and when. */
  readonly policy: RetryPolicy
  /** What the error mapping names in its messages (`mapRequestError`). */
  readonly errors: MapContext
  /** The events and debug lines of requests. */
  readonly diagnostics: RequestDiagnostics
  /** Requests between attempts (a timer, no connection): failed at once by close()/destroy(). */
  readonly waiting: Set<IpcRequest>
}

/**
 * The client's behaviour as an undici interceptor (`dispatch => dispatch`, the shape of
 * undici's `interceptors.retry()`): typed errors and retries on every request that goes through
 * the returned dispatch, whichever way it was called. The caller's handler is spoken to in the
 * core interface (core-handler.ts).
 *
 * @example
 * const dispatch = ipcInterceptor(units)((opts, handler) => pool.dispatch(opts, handler))
 */
export function ipcInterceptor(units: IpcRequestUnits): (dispatch: Dispatcher.Dispatch) => Dispatcher.Dispatch {
  return (dispatch) => (opts, handler) => new IpcRequest(units, dispatch, opts, coreHandler(handler)).start()
}

/**
 * One request through the dispatcher, across its attempts: it is the handler undici calls for
 * each attempt and forwards to the caller's handler once (holding the head: HeadHoldingHandler).
 *
 * Error mapping: every error becomes one of our classes (`mapRequestError`; the caller's own
 * abort passes through). Retries: the client's `RetryPolicy` says whether and when. "Sent" means
 * undici started writing this attempt (onConnect); before that, e.g. while the request waited in
 * the pool for a connection that failed, nothing left and any method may be tried again. The
 * caller's abort works on the attempt in progress and on the wait between two.
 */
export class IpcRequest extends HeadHoldingHandler {
  // Declared and set in the constructor, not initialized as class fields: see HeadHoldingHandler.
  private declare readonly units: IpcRequestUnits
  private declare readonly dispatch: Dispatcher.Dispatch
  private declare readonly opts: Dispatcher.DispatchOptions & { ipc?: IpcDispatchOverrides }
  private declare readonly budget: RetryBudget
  private declare readonly method: string
  private declare readonly replayable: boolean
  private declare readonly timeoutMs: number
  private declare attempt: number
  private declare startedAt: number
  private declare sent: boolean
  private declare connected: boolean
  private declare abortAttempt: ((err?: Error) => void) | undefined
  private declare abortReason: Error | undefined
  private declare timer: NodeJS.Timeout | undefined
  /** The abort the caller's handler holds: the attempt in progress, or the wait between two. */
  private declare readonly abort: (err?: Error) => void

  constructor(units: IpcRequestUnits, dispatch: Dispatcher.Dispatch, opts: Dispatcher.DispatchOptions & { ipc?: IpcDispatchOverrides }, handler: CoreHandler) {
    const budget = units.policy.budgetFor(opts.ipc)
    const replayable = isReplayable(opts.body)
    super(handler, units.policy.holdsHead(opts.method, replayable, budget))
    this.units = units
    this.dispatch = dispatch
    this.opts = opts
    this.budget = budget
    this.method = opts.method
    this.replayable = replayable
    this.timeoutMs = opts.headersTimeout ?? units.errors.timeoutMs
    this.attempt = 0
    this.startedAt = 0
    this.sent = false
    this.connected = false
    this.abortAttempt = undefined
    this.abortReason = undefined
    this.timer = undefined
    this.abort = (err) => {
      if (this.abortReason !== undefined) return
      this.abortReason = err ?? new AbortedError(units.errors.target)
      if (this.timer !== undefined) this.fail(this.abortReason)
      else this.abortAttempt?.(this.abortReason)
    }
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

  onError(err: Error): void {
    if (this.abortReason !== undefined) return this.fail(err) // the caller's abort, untouched
    const mapped = mapRequestError(err, this.units.errors, this.timeoutMs) as Error
    if (!this.delivered && this.replayable) {
      const delay = this.units.policy.delayAfter(mapped, this.method, this.sent, this.attempt, this.startedAt, this.budget)
      if (delay !== undefined) return this.retryAfter(delay, mapped)
    }
    this.fail(mapped)
  }

  protected onDelivered(): void {
    this.units.diagnostics.outcome(this.method, 'ok', undefined, this.attempt + 1)
  }

  private retryAfter(delay: number, err: Error): void {
    this.units.diagnostics.outcome(this.method, 'retry', err, this.attempt + 1)
    this.attempt++
    this.sent = false
    this.dropHeldHead()
    this.abortAttempt = undefined
    // The caller's handler gets its abort now, so that it works during the wait.
    this.connectDownstream(undefined)
    if (this.abortReason !== undefined) return this.fail(this.abortReason)
    this.units.diagnostics.retrying(err, this.attempt, delay, this.method, this.opts.path)
    this.units.waiting.add(this)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.units.waiting.delete(this)
      this.dispatch(this.opts, this as Dispatcher.DispatchHandler)
    }, delay)
  }

  private fail(err: Error): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.units.waiting.delete(this)
    }
    this.units.policy.noteGaveUp(err, this.attempt, this.startedAt, this.budget)
    this.units.diagnostics.outcome(this.method, 'error', err, this.attempt + 1)
    this.handler.onError?.(err)
  }

  private connectDownstream(context: unknown): void {
    if (this.connected) return
    this.connected = true
    this.handler.onConnect?.(this.abort, context)
  }
}
