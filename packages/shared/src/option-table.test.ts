import { describe, expect, it } from 'vitest'
import { integer, parseBoolean } from './option-parsers.js'
import { defaultsOf, docRows, envOf, group, option, optional, orFalse, resolveOptions, sourcesOf, type OptionsInput } from './option-table.js'

const INNER = {
  /** A flag. */
  on: option<boolean>()({ env: 'T_ON', default: false, parse: parseBoolean }),
}

const TABLE = {
  /** A count. */
  count: option<number | string>()({ env: 'T_COUNT', default: 4, parse: integer(1, 10) }),
  /** Half the count unless given. */
  half: option<number>()({ fallback: (r) => (r.count as number) / 2, parse: integer(0) }),
  /** Unset unless given. */
  name: option<string>()({ parse: optional((_n: string, v: string) => v) }),
  /** Must be given. */
  id: option<number>()({ required: true, parse: integer(0) }),
  inner: option<OptionsInput<typeof INNER> | false>()({
    parse: orFalse(group(INNER, { shape: '{ on } or false', finish: (v) => v })),
    parseAbsent: true,
    table: INNER,
    docs: { expand: true },
  }),
}

const resolve = (given: object, env: Record<string, string> = {}) => resolveOptions(TABLE, given, { scope: 'options', env })

describe('option tables', () => {
  it('explicit option > environment variable > fallback > default, each through its parser, with where it came from', () => {
    expect(resolve({ id: 1 }).values).toEqual({ count: 4, half: 2, name: undefined, id: 1, inner: { on: false } })
    const fromEnv = resolve({ id: 1 }, { T_COUNT: ' 8 ', T_ON: 'yes' })
    expect(fromEnv.values).toMatchObject({ count: 8, half: 4, inner: { on: true } })
    expect(fromEnv.sources).toMatchObject({ count: 'env:T_COUNT', half: 'default', id: 'option' })
    expect(resolve({ id: 1, count: 6 }, { T_COUNT: '8' }).values.count).toBe(6)
    // An explicit nested object is taken whole: its variables are not read.
    expect(resolve({ id: 1, inner: {} }, { T_ON: 'yes' }).values.inner).toEqual({ on: false })
    expect(resolve({ id: 1, inner: false }).values.inner).toBe(false)
  })

  it.each([
    [{ id: 1, cont: 1 }, 'cont'],
    [{ id: 1, count: 11 }, 'count'],
    [{ id: 1, count: 'many' }, 'count'],
    [{}, 'id'],
    [{ id: 1, inner: { of: true } }, 'inner.of'],
    [{ id: 1, inner: 'on' }, 'inner'],
    [{ id: 1, inner: { on: 'maybe' } }, 'inner.on'],
  ])('refuses %j with IPC_INVALID_OPTION naming %s', (given, name) => {
    expect(() => resolve(given)).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: name }))
  })

  it('refuses a malformed environment variable, naming the option', () => {
    expect(() => resolve({ id: 1 }, { T_COUNT: '0' })).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'count' }))
  })

  it('gives the defaults, the variables and the docs rows of a table', () => {
    expect(defaultsOf(TABLE)).toEqual({ count: 4, inner: { on: false } })
    expect(Object.isFrozen(defaultsOf(TABLE))).toBe(true)
    expect(envOf(TABLE)).toEqual({ count: 'T_COUNT', 'inner.on': 'T_ON' })
    expect(docRows(TABLE).map((r) => [r.name, r.env.join(), r.default])).toEqual([
      ['count', 'T_COUNT', '`4`'],
      ['half', '', ''],
      ['name', '', ''],
      ['id', '', ''],
      ['inner.on', 'T_ON', '`false`'],
    ])
  })

  it('says where nested settings came from without resolving them', () => {
    expect(sourcesOf(INNER, undefined, { T_ON: '1' })).toEqual({ on: 'env:T_ON' })
    expect(sourcesOf(INNER, { on: true }, {})).toEqual({ on: 'option' })
    expect(sourcesOf(INNER, false, {})).toEqual({ on: 'option' })
  })
})
