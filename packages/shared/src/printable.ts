/**
 * Text that another party supplied (a server's health warnings, a certificate subject, a path
 * read from a link) is printed by the operator tools to a terminal. A terminal acts on control
 * characters: ESC and the C1 CSI (U+009B) start sequences that retitle the window, clear the
 * screen or rewrite what is shown, CR and LF forge report lines, and bidi overrides (U+202E)
 * reorder what is read. Every such character is written as an escape instead, the way `ls -b`
 * and `journalctl` do.
 */

/**
 * Control (C0, DEL, C1), format (bidi overrides, zero widths), line/paragraph separators and
 * lone surrogates: everything a terminal may act on or show as something else.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu

const NAMED: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' }

function escapeOne(c: string): string {
  const named = NAMED[c]
  if (named !== undefined) return named
  const n = c.codePointAt(0)!
  if (n <= 0xff) return `\\x${n.toString(16).padStart(2, '0')}`
  if (n <= 0xffff) return `\\u${n.toString(16).padStart(4, '0')}`
  return `\\u{${n.toString(16)}}`
}

/**
 * `text` with every control, format and separator character written as `\t`, `\n`, `\r`,
 * `\xNN`, `\uNNNN` or `\u{N}`; everything else (letters of any script, emoji, backslashes)
 * unchanged. Applying it twice changes nothing more, so a finding escaped where it is made may
 * be escaped again where it is printed.
 *
 * @example
 * printable('\x1b]0;pwned\x07 degraded') // '\\x1b]0;pwned\\x07 degraded'
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeOne)
}

/**
 * Characters that JSON.stringify leaves raw inside strings but a terminal acts on: DEL, C1,
 * format characters, separators. (It escapes C0 itself, and lone surrogates since ES2019.)
 */
const JSON_UNPRINTABLE = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu

/**
 * `JSON.stringify(value, null, 2)` that a terminal cannot act on: the characters it would leave
 * raw are written as `\uNNNN` escapes, so a JSON parser reads back exactly the same value.
 *
 * @example
 * printableJson({ http: 'HTTP/1.1 200 \u009b2J' }) // '{\n  "http": "HTTP/1.1 200 \\u009b2J"\n}'
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(JSON_UNPRINTABLE, (c) => {
    let out = ''
    // An astral format character (U+E0001...) is two UTF-16 code units: JSON writes each.
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`
    return out
  })
}
