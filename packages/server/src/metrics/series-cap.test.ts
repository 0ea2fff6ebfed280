import { describe, expect, it } from 'vitest'
import { OVERFLOW_LABELS, createSeriesCap } from './series-cap.js'

describe('createSeriesCap', () => {
  it('keeps the first maxSeries label sets, sends the rest to one overflow set, warns once', () => {
    let warnings = 0
    const cap = createSeriesCap(2, () => warnings++)
    const a = { method: 'GET', route: '/a', status: '200' }
    const b = { method: 'GET', route: '/b', status: '200' }
    expect(cap.admit(a)).toBe(a)
    expect(cap.admit(b)).toBe(b)
    expect(cap.admit({ method: 'GET', route: '/c', status: '200' })).toBe(OVERFLOW_LABELS)
    expect(cap.admit({ method: 'GET', route: '/a', status: '500' })).toBe(OVERFLOW_LABELS)
    expect(cap.admit({ ...a })).toEqual(a) // a known set is always counted as itself
    expect(cap.size).toBe(2)
    expect(warnings).toBe(1)
  })
})
