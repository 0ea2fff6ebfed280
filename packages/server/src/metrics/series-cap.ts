/** The label set of a request metric. */
export interface RequestLabels {
  readonly method: string
  readonly route: string
  readonly status: string
}

/** Where requests go once the cap is reached: one fixed series, whatever they were. */
export const OVERFLOW_LABELS: RequestLabels = Object.freeze({ method: 'other', route: 'overflow', status: 'other' })

export interface SeriesCap {
  /** `labels` if its set is known or there is room for it, else `OVERFLOW_LABELS`. */
  admit(labels: RequestLabels): RequestLabels
  /** Label sets admitted so far (the overflow series not counted). */
  readonly size: number
}

/**
 * A hard cap on the label sets of the request metrics: the first `maxSeries` distinct sets are
 * kept; any further request is counted under `OVERFLOW_LABELS`, and `onFirstOverflow` is called
 * once (to log a warning). So the series a scrape returns (and the memory they hold) are bounded
 * whatever the labels turn out to be.
 *
 * @example
 * const cap = createSeriesCap(500, () => log.warn('maxSeries reached'))
 * requests.inc(cap.admit({ method: 'GET', route: '/reports/:id', status: '200' }))
 */
export function createSeriesCap(maxSeries: number, onFirstOverflow: () => void): SeriesCap {
  const known = new Set<string>()
  let warned = false
  return {
    admit(labels) {
      const key = `${labels.method}\n${labels.route}\n${labels.status}`
      if (known.has(key)) return labels
      if (known.size < maxSeries) {
        known.add(key)
        return labels
      }
      if (!warned) {
        warned = true
        onFirstOverflow()
      }
      return OVERFLOW_LABELS
    },
    get size() {
      return known.size
    },
  }
}
