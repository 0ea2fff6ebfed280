import { describe, expect, it } from 'vitest'
import { Readable } from 'node:stream'
import {
  ClientClosedError,
  ConnectionLostError,
  HttpStatusError,
  PeerRejectedError,
  PermissionDeniedError,
  ServiceUnavailableError,
  TimeoutError,
  TlsClientCertRequiredError,
  TlsUntrustedError,
} from '@naaccord/ipc-shared'
import { isReplayable, isRetryable, nextRetryDelay } from './retry.js'

const t = '/run/s.sock'
const lost = new ConnectionLostError(t, 'reset')
const gone = new ServiceUnavailableError(t, 'ENOENT')
const slow = new TimeoutError(t, 100)

describe('isRetryable: what may be tried again', () => {
  it.each([
    // error, method, sent, retry?
    [gone, 'POST', false, true], // nothing left: any method
    [lost, 'POST', false, true],
    [slow, 'POST', false, true], // connect timeout
    [gone, 'GET', false, true],
    [lost, 'GET', true, true], // sent, idempotent
    [lost, 'PUT', true, true],
    [lost, 'DELETE', true, true],
    [gone, 'HEAD', true, true],
    [lost, 'POST', true, false], // may have reached the server: never replayed
    [lost, 'PATCH', true, false],
    [slow, 'GET', true, false], // the server may still be working on it
    [new PermissionDeniedError(t), 'GET', false, false],
    [new PeerRejectedError('uid'), 'GET', false, false],
    [new TlsUntrustedError('x'), 'GET', false, false],
    [new TlsClientCertRequiredError('x'), 'GET', true, false],
    [new ClientClosedError(t), 'GET', false, false],
    [new HttpStatusError('GET', '/', 503, null), 'GET', true, false],
    [new Error('raw'), 'GET', false, false],
  ] as const)('%s %s sent=%s -> %s', (err, method, sent, expected) => {
    expect(isRetryable(err, method, sent)).toBe(expected)
  })
})

describe('nextRetryDelay: backoff with jitter, bounded by count and by window', () => {
  const budget = { retries: 20, retryWindowMs: 5_000, retryDelayMs: 100, maxRetryDelayMs: 1_000 }

  it('doubles from retryDelayMs, jittered between half and all of the ceiling, capped', () => {
    expect(nextRetryDelay(0, 0, budget, () => 0)).toBe(50)
    expect(nextRetryDelay(0, 0, budget, () => 1)).toBe(100)
    expect(nextRetryDelay(3, 0, budget, () => 1)).toBe(800)
    expect(nextRetryDelay(4, 0, budget, () => 1)).toBe(1_000)
    expect(nextRetryDelay(9, 0, budget, () => 0)).toBe(500)
  })

  it('stops after `retries` retries, and 0 means none', () => {
    expect(nextRetryDelay(20, 0, budget)).toBeUndefined()
    expect(nextRetryDelay(0, 0, { ...budget, retries: 0 })).toBeUndefined()
  })

  it('never waits past the end of the window, and stops once it has passed', () => {
    expect(nextRetryDelay(5, 4_900, budget, () => 1)).toBe(100)
    expect(nextRetryDelay(1, 5_000, budget)).toBeUndefined()
    expect(nextRetryDelay(0, 0, { ...budget, retryWindowMs: 0 })).toBeUndefined()
  })

  it.each([0, 1])('with the default budget (jitter at %s), retries span the whole window', (jitter) => {
    let elapsed = 0
    let attempt = 0
    for (let d = nextRetryDelay(attempt, elapsed, budget, () => jitter); d !== undefined; d = nextRetryDelay(++attempt, elapsed, budget, () => jitter)) elapsed += d
    expect(elapsed).toBe(5_000)
    expect(attempt).toBeLessThan(20)
  })
})

describe('isReplayable: bodies that can be sent again', () => {
  it.each([
    [undefined, true],
    [null, true],
    ['{"a":1}', true],
    [Buffer.from('x'), true],
    [new Uint8Array(1), true],
    [Readable.from(['x']), false],
  ] as const)('%s -> %s', (body, expected) => {
    expect(isReplayable(body)).toBe(expected)
  })
})
