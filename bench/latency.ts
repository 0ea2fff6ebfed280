/**
 * Every latency of one measurement, kept exactly (milliseconds, as doubles): a few hundred
 * thousand values at most, so percentiles are read from the sorted samples rather than from a
 * histogram. (A histogram of whole milliseconds, as load tools keep, is too coarse for a Unix
 * socket at one connection, where a request takes a few tens of microseconds.)
 */
export class LatencyRecorder {
  #values = new Float64Array(1 << 16)
  #count = 0

  get count(): number {
    return this.#count
  }

  record(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#count++] = ms
  }

  /** p50, p99 and mean in milliseconds; NaN when nothing was recorded. */
  summary(): { p50: number; p99: number; mean: number } {
    const n = this.#count
    if (n === 0) return { p50: NaN, p99: NaN, mean: NaN }
    const sorted = this.#values.slice(0, n).sort()
    let sum = 0
    for (let i = 0; i < n; i++) sum += sorted[i]!
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!
    return { p50: at(0.5), p99: at(0.99), mean: sum / n }
  }
}
