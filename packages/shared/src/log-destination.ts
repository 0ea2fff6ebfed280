import { errorMonitor, type EventEmitter } from 'node:events'
import { pino } from 'pino'
import { installLogExitFlush } from './process-effects.js'

/**
 * How our own logger buffers: lines are collected in memory and handed to the file or stdout
 * writer once `minLength` characters are waiting, and at the latest every `flushIntervalMs` (an
 * unref'd timer, so it never keeps a process alive). A SIGKILL (or a crash that skips 'exit')
 * loses at most the last `flushIntervalMs` of lines. Everything that ends a process normally
 * writes them out synchronously first: server close(), SIGTERM/SIGINT through serve(),
 * process.exit() and an uncaught exception.
 */
export const LOG_BUFFER = Object.freeze({ minLength: 16 * 1024, flushIntervalMs: 100 })

/** What pino needs of a destination, plus the flushes the server and the process hooks call. */
export interface BufferedDestination {
  write(line: string): boolean
  /** Hand everything buffered to the writer and call back once it is written (at most ~1 s later). */
  flush(cb?: (err?: Error | null) => void): void
  /** Write everything buffered now, synchronously. Throws if the file is not open yet. */
  flushSync(): void
  end(): void
  readonly destroyed: boolean
}

// The most sonic-boom hands one write(2) (it slices longer strings): well above a hand-over.
const WRITE_CHUNK = 1024 * 1024

// The longest flush() waits for a write in flight (a stdout pipe nobody reads may never drain).
const FLUSH_WAIT_MS = 1000

const open = new Set<BufferedDestination>()

/**
 * Write out, synchronously, everything every destination of ours still buffers: what the exit
 * hooks run, and what serve() runs before it re-raises SIGTERM/SIGINT (a re-raised signal ends
 * the process without 'exit').
 *
 * @example
 * flushAllSync()
 * process.kill(process.pid, 'SIGTERM')
 */
export function flushAllSync(): void {
  for (const d of open) {
    try {
      d.flushSync()
    } catch {
      // Not open yet or already closed: nothing more can be written.
    }
  }
}

/**
 * Hand over what every buffered destination holds and wait until their writes are done (each
 * at most FLUSH_WAIT_MS): what the signal handler awaits before it re-raises a signal.
 *
 * @example
 * await flushAll()
 * process.kill(process.pid, 'SIGTERM')
 */
export function flushAll(): Promise<void> {
  return Promise.all([...open].map((d) => new Promise<void>((resolve) => d.flush(() => resolve())))).then(() => undefined)
}

/** Whether the writer still has a write in progress, and a way to wait until it has none. */
interface WriteTracker {
  /** Call after every write handed to the writer. */
  wrote(): void
  /** Call `cb` once nothing handed over is still being written, or after `timeoutMs`. */
  whenIdle(cb: () => void, timeoutMs: number): void
}

/**
 * Follow sonic-boom's writes through its public events: asynchronous and with `minLength: 0`, a
 * write() starts writing at once or queues behind the write in progress, and 'drain' comes when
 * the last byte handed over is written (sonic-boom's README: 'drain', 'close'); an error ends
 * the wait too (`errorMonitor` observes it without handling it: pino stops logging on EPIPE and
 * rethrows anything else). test/request-log.test.ts holds the flush guarantees this serves.
 */
function trackWrites(writer: EventEmitter): WriteTracker {
  let busy = false
  let failed = false
  let waiters: Array<() => void> = []
  const settle = () => {
    busy = false
    const ready = waiters
    waiters = []
    for (const cb of ready) cb()
  }
  writer.on('drain', settle)
  writer.on('close', settle)
  writer.on(errorMonitor, () => {
    failed = true
    settle()
  })
  return {
    wrote() {
      if (!failed) busy = true
    },
    whenIdle(cb, timeoutMs) {
      if (!busy) return cb()
      let done = false
      const once = () => {
        if (done) return
        done = true
        clearTimeout(timer)
        cb()
      }
      const timer = setTimeout(once, timeoutMs)
      waiters.push(once)
    },
  }
}

/**
 * A buffered pino destination. pino's own sonic-boom with `minLength` appends each line to one
 * growing string and measures its byte length again on every write (a cost that grows with the
 * buffer: about 3-4 µs a line at 4 KiB here), so lines are collected in an array instead and
 * joined into one string per hand-over; sonic-boom (asynchronous, minLength 0) still does the
 * writing: ordering, partial writes, EAGAIN on pipes, flushSync. Its `maxWrite` is raised above
 * a hand-over's size: at its default (16 KiB) a 16 KiB hand-over became two writes, each an
 * asynchronous write through the thread pool (measured: 0.8 instead of 1.6-1.9 µs a line).
 *
 * @example
 * const log = pino({ name: 'svc' }, bufferedDestination(1))
 */
export function bufferedDestination(dest: string | number, options: { minLength?: number; flushIntervalMs?: number } = {}): BufferedDestination {
  const minLength = options.minLength ?? LOG_BUFFER.minLength
  const writer = pino.destination({ dest, sync: false, maxWrite: Math.max(WRITE_CHUNK, 4 * minLength) })
  // `destroyed`: the stream property pino's own exit handler reads on its sonic-boom.
  const closed = () => (writer as unknown as { destroyed: boolean }).destroyed
  const writes = trackWrites(writer)
  let pending: string[] = []
  let chars = 0
  const handOver = () => {
    if (chars === 0 || closed()) return
    const out = pending.length === 1 ? pending[0]! : pending.join('')
    pending = []
    chars = 0
    writer.write(out)
    writes.wrote()
  }
  const timer = setInterval(handOver, options.flushIntervalMs ?? LOG_BUFFER.flushIntervalMs)
  timer.unref()
  const destination: BufferedDestination = {
    write(line) {
      pending.push(line)
      chars += line.length
      if (chars >= minLength) handOver()
      return true
    },
    flush(cb) {
      handOver()
      // sonic-boom's own flush (minLength 0) calls back at once, even with a write in flight:
      // wait for it, a little at most, so that a later flushSync() and exit cannot overtake it.
      if (closed()) cb?.(null)
      else writes.whenIdle(() => cb?.(null), FLUSH_WAIT_MS)
    },
    flushSync() {
      handOver()
      writer.flushSync()
    },
    end() {
      handOver()
      writer.end()
    },
    get destroyed() {
      return closed()
    },
  }
  writer.on('close', () => {
    clearInterval(timer)
    open.delete(destination)
  })
  open.add(destination)
  // The process 'exit' and 'uncaughtExceptionMonitor' hooks: see flushLogsOnExit in process-effects.ts.
  installLogExitFlush(flushAllSync, process.env, flushAll)
  return destination
}
