import { describe, expect, it } from 'vitest'
import { ClientClosedError, ConnectionLostError, PermissionDeniedError } from '@naaccord/ipc-shared'
import { RetryPolicy } from './retry-policy.js'

const t = '/run/s.sock'
const budget = { retries: 3, retryWindowMs: 5_000, retryDelayMs: 100, maxRetryDelayMs: 1_000 }
const policy = new RetryPolicy(budget)

describe('RetryPolicy: the retries of one client', () => {
  it("uses the client's budget, or a request's overrides on top of it", () => {
    expect(policy.budgetFor(undefined)).toBe(budget)
    expect(policy.budgetFor({ retries: 0 })).toEqual({ ...budget, retries: 0 })
  })

  it('holds the head only when a retry after sending is possible', () => {
    expect(policy.holdsHead('GET', true, budget)).toBe(true)
    expect(policy.holdsHead('POST', true, budget)).toBe(false)
    expect(policy.holdsHead('GET', false, budget)).toBe(false)
    expect(policy.holdsHead('GET', true, { ...budget, retries: 0 })).toBe(false)
  })

  it('gives a delay for what may be retried, none for a refusal or a spent budget', () => {
    const lost = new ConnectionLostError(t, 'reset')
    const delay = policy.delayAfter(lost, 'GET', true, 0, Date.now(), budget)
    expect(delay).toBeGreaterThanOrEqual(50)
    expect(delay).toBeLessThanOrEqual(100)
    expect(policy.delayAfter(lost, 'POST', true, 0, Date.now(), budget)).toBeUndefined()
    expect(policy.delayAfter(new PermissionDeniedError(t), 'GET', false, 0, Date.now(), budget)).toBeUndefined()
    expect(policy.delayAfter(lost, 'GET', true, 3, Date.now(), budget)).toBeUndefined()
  })

  it('notes attempts and time on the final error only after retries, never on a closed client', () => {
    const first = new ConnectionLostError(t, 'reset')
    policy.noteGaveUp(first, 0, Date.now(), budget)
    expect(first.attempts).toBeUndefined()
    const last = new ConnectionLostError(t, 'reset')
    policy.noteGaveUp(last, 2, Date.now() - 30, budget)
    expect(last.attempts).toBe(3)
    expect(last.elapsedMs).toBeGreaterThanOrEqual(30)
    expect(last.message).toContain('gave up after 3 attempts')
    const closed = new ClientClosedError(t)
    policy.noteGaveUp(closed, 2, Date.now(), budget)
    expect(closed.attempts).toBeUndefined()
  })
})
