import { describe, expect, it } from 'vitest'
import { printable, printableJson } from './printable.js'

describe('printable', () => {
  it.each([
    ['\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
    ['\x1b[2J', '\\x1b[2J'],
    ['a\r\n  [ok] forged', 'a\\r\\n  [ok] forged'],
    ['tab\there', 'tab\\there'],
    ['nul\x00 del\x7f', 'nul\\x00 del\\x7f'],
    ['c1 csi \u009b2J', 'c1 csi \\x9b2J'],
    ['bidi \u202eabc', 'bidi \\u202eabc'],
    ['zero\u200bwidth', 'zero\\u200bwidth'],
    ['line\u2028sep', 'line\\u2028sep'],
    ['tag \u{e0041}', 'tag \\u{e0041}'],
    ['lone \ud800 surrogate', 'lone \\ud800 surrogate'],
  ])('escapes %j', (raw, shown) => {
    expect(printable(raw)).toBe(shown)
  })

  it('keeps letters of any script, emoji, backslashes and quotes', () => {
    const text = 'Grüße, 日本語, שלום, 🙂, C:\\path "quoted"'
    expect(printable(text)).toBe(text)
  })

  it('is idempotent: escaping twice changes nothing more', () => {
    const once = printable('\x1b[2J\u202e\u{e0041}')
    expect(printable(once)).toBe(once)
  })
})

describe('printableJson', () => {
  it('reads back the same value, with nothing a terminal acts on left raw', () => {
    const value = { http: 'HTTP/1.1 200 \x1b]0;pwned\x07\u009b2J', why: 'a\r\nb \u202e \u2028 \u{e0041} \x7f', n: 1 }
    const text = printableJson(value)
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e\u2028]|\u{e0041}/u)
    expect(JSON.parse(text)).toEqual(value)
    expect(text).toContain('\\u009b2J')
  })

  it('is JSON.stringify(value, null, 2) for plain text', () => {
    const value = { status: 'ok', findings: [{ check: 'path', message: 'Grüße 🙂' }] }
    expect(printableJson(value)).toBe(JSON.stringify(value, null, 2))
  })
})
