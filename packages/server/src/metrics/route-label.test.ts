import type http from 'node:http'
import { describe, expect, it } from 'vitest'
import { routeLabel } from './route-label.js'

/** A router as router 2.3's listRoutes() describes it: `{ path, router }` per route or mounted router. */
function router(entries: Array<[unknown, FakeRouter?]>): FakeRouter {
  const r: FakeRouter = { entries, listRoutes: () => r.entries.map(([path, sub]) => ({ path, methods: sub ? undefined : ['GET'], router: sub })) }
  return r
}
interface FakeRouter {
  entries: Array<[unknown, FakeRouter?]>
  listRoutes(): Array<{ path: unknown; methods: string[] | undefined; router: FakeRouter | undefined }>
}

/** A finished request as Express leaves it: the matched route, the real mount prefix, the app. */
function req(routePath: unknown, baseUrl: string, root: unknown, url = '/x'): http.IncomingMessage {
  return { url, route: routePath === undefined ? undefined : { path: routePath }, baseUrl, app: { router: root } } as unknown as http.IncomingMessage
}

describe('routeLabel', () => {
  it('a route of the app itself: its template; no route: the health path or "unmatched"', () => {
    const root = router([['/reports/:id']])
    expect(routeLabel(req('/reports/:id', '', root), '/healthz')).toBe('/reports/:id')
    expect(routeLabel(req(undefined, '', root, '/healthz?x=1'), '/healthz')).toBe('/healthz')
    expect(routeLabel(req(undefined, '', root, '/patients/123-45-6789'), '/healthz')).toBe('unmatched')
    expect(routeLabel(req(undefined, '', root, '/healthz'), undefined)).toBe('unmatched')
  })

  it('mounted routers: the chain of mount templates that fits the real prefix', () => {
    const visits = router([['/notes/:nid']])
    const records = router([['/records'], ['/visits/:vid', visits]])
    const admin = router([['/stats'], ['/records']])
    const root = router([['/patients/:pid', records], ['/Admin/', admin]])
    expect(routeLabel(req('/records', '/patients/123-45-6789', root), undefined)).toBe('/patients/:pid/records')
    expect(routeLabel(req('/notes/:nid', '/patients/1/visits/v%2F2', root), undefined)).toBe('/patients/:pid/visits/:vid/notes/:nid')
    // Literal segments match case-insensitively (Express's default), a trailing slash adds nothing.
    expect(routeLabel(req('/records', '/admin', root), undefined)).toBe('/Admin/records')
  })

  it('never any part of the URL: unknown when nothing fits, when two templates fit, and without listRoutes', () => {
    const a = router([['/c']])
    const b = router([['/c']])
    const root = router([['/a/:x', a], ['/a/b', b], ['/p/:q', router([['/only']])]])
    // '/a/:x' and '/a/b' both fit '/a/b', and both hold a '/c': which one answered is unknown.
    expect(routeLabel(req('/c', '/a/b', root), undefined)).toBe('unknown_mount')
    expect(routeLabel(req('/c', '/a/zz', root), undefined)).toBe('/a/:x/c')
    expect(routeLabel(req('/only', '/p/1/extra', root), undefined)).toBe('unknown_mount') // too many segments
    expect(routeLabel(req('/nowhere', '/p/1', root), undefined)).toBe('unknown_mount')
    expect(routeLabel(req('/c', '/a/b', { stack: [] }), undefined)).toBe('unknown_mount') // router < 2.3
    expect(routeLabel(req('/c', '/a/b', undefined), undefined)).toBe('unknown_mount') // not Express
    expect(routeLabel(req(/^\/r\/\d+$/, '/a/b', root), undefined)).toBe('unknown_mount')
  })

  it('a mount whose segment count is not fixed (RegExp, optional, wildcard) is believed only when it is the one candidate', () => {
    const root = router([[/^\/t\/\d+/, router([['/items']])], ['/files/*rest', router([['/meta']])], ['/x{/:y}', router([['/meta']])]])
    expect(routeLabel(req('/items', '/t/42', root), undefined)).toBe(`${String(/^\/t\/\d+/)}/items`)
    expect(routeLabel(req('/meta', '/files/a/b', root), undefined)).toBe('unknown_mount') // two candidates
  })

  it('a router mounted inside itself, or a huge table, costs a bounded walk', () => {
    const loop = router([['/leaf']])
    loop.entries.push(['/again', loop])
    const root = router([['/l', loop]])
    expect(routeLabel(req('/leaf', '/l/again/again', root), undefined)).toBe('/l/again/again/leaf')
    expect(routeLabel(req('/leaf', `/l${'/again'.repeat(40)}`, root), undefined)).toBe('unknown_mount')
  })
})
