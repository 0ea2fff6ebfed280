/**
 * At most `perSecond` log lines a second; counts what it held back, reported with the next line
 * (`suppressed()`), so a peer reconnecting in a loop cannot flood the log.
 *
 * @example
 * const budget = logBudget(10)
 * if (budget.take()) log.warn({ suppressed: budget.suppressed() }, 'refused connection')
 */
export function logBudget(perSecond: number): { take(): boolean; suppressed(): number | undefined } {
  let windowStart = 0
  let used = 0
  let held = 0
  return {
    take() {
      const now = Date.now()
      if (now - windowStart >= 1000) {
        windowStart = now
        used = 0
      }
      if (used < perSecond) {
        used++
        return true
      }
      held++
      return false
    },
    suppressed() {
      const n = held
      held = 0
      return n === 0 ? undefined : n
    },
  }
}
