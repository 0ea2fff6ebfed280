import type http from 'node:http'

/**
 * The `route` label of a request, from route templates only: never any part of the URL (an id
 * in a label is both a leak and a memory bomb: Prometheus' instrumentation guidelines).
 *
 * Express gives the matched route's template (`req.route.path`) but, for a router mounted under
 * a path (`app.use('/patients/:pid', router)`), only the real prefix it matched (`req.baseUrl`,
 * `/patients/123-45-6789`). The mount templates come from router 2.3's public
 * `router.listRoutes()` (Express 5 installs it), walked from the app's router (`req.app.router`)
 * down through mounted routers; the chain of mount templates that fits `req.baseUrl` segment by
 * segment (and ends in a router holding a route of that template) gives the label. When no
 * template can be known (an Express sub-app, an older router without `listRoutes`, a mount
 * pattern with optional parts or a RegExp that two chains could both explain) the label is the
 * fixed word `unknown_mount`.
 */

/** No route matched (404, or an answer from middleware that is not a route). */
export const UNMATCHED = 'unmatched'
/** A route under a mount whose template cannot be known. */
export const UNKNOWN_MOUNT = 'unknown_mount'

/** A route table entry, as router 2.3's `listRoutes()` gives it. */
interface RouteEntry {
  readonly path: unknown
  readonly router?: unknown
}
interface ListsRoutes {
  listRoutes(): readonly RouteEntry[]
}
/** What Express puts on a request, as far as the label needs it. */
interface ExpressRequest extends http.IncomingMessage {
  route?: { path?: unknown }
  baseUrl?: string
  app?: { router?: unknown }
}

/** Mounts nested deeper than this are not followed (and a router mounted inside itself ends). */
const MAX_DEPTH = 16
/** Chains kept per app: a bound on what a large or cyclic route table can cost. */
const MAX_CHAINS = 10_000
/** A route table is read again at most this often when a request fits none of its chains (routes added later). */
const REREAD_AFTER_MS = 10_000

/** Mount chains (outermost first) by the template of the route they end in. */
type ChainIndex = Map<string, Array<readonly unknown[]>>
const indexes = new WeakMap<object, { index: ChainIndex; readAt: number }>()

function listsRoutes(router: unknown): router is ListsRoutes {
  return (typeof router === 'function' || (typeof router === 'object' && router !== null)) && typeof (router as Partial<ListsRoutes>).listRoutes === 'function'
}

function readChains(root: ListsRoutes): ChainIndex {
  const index: ChainIndex = new Map()
  let count = 0
  const walk = (router: ListsRoutes, chain: readonly unknown[], depth: number): void => {
    for (const entry of router.listRoutes()) {
      if (count >= MAX_CHAINS) return
      if (listsRoutes(entry.router)) {
        if (depth < MAX_DEPTH) walk(entry.router, [...chain, entry.path], depth + 1)
      } else if (chain.length > 0 && typeof entry.path === 'string') {
        const list = index.get(entry.path) ?? []
        list.push(chain)
        index.set(entry.path, list)
        count++
      }
    }
  }
  walk(root, [], 0)
  return index
}

function chainsFor(root: ListsRoutes, routePath: string, reread: boolean): Array<readonly unknown[]> {
  let cached = indexes.get(root)
  if (!cached || (reread && Date.now() - cached.readAt > REREAD_AFTER_MS)) {
    cached = { index: readChains(root), readAt: Date.now() }
    indexes.set(root, cached)
  }
  return cached.index.get(routePath) ?? []
}

/** The segments of a mount pattern, or undefined when its segment count is not fixed (optional, wildcard, RegExp). */
function patternSegments(pattern: unknown): string[] | undefined {
  if (typeof pattern !== 'string' || /[{}*()?+\\]/.test(pattern)) return undefined
  const trimmed = pattern.replace(/\/+$/, '')
  if (trimmed === '') return []
  if (!trimmed.startsWith('/')) return undefined
  return trimmed.slice(1).split('/')
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * Whether a chain of mount patterns matches `baseUrl` exactly: `yes`, `no`, or `maybe` (a pattern
 * whose segment count is not fixed; only a unique candidate of that kind is believed).
 */
function fits(chain: readonly unknown[], baseUrl: string): 'yes' | 'no' | 'maybe' {
  const real = baseUrl === '' ? [] : baseUrl.slice(1).split('/')
  let at = 0
  for (const pattern of chain) {
    const segments = patternSegments(pattern)
    if (segments === undefined) return 'maybe'
    for (const s of segments) {
      const r = real[at++]
      if (r === undefined || r === '') return 'no'
      // A segment with a parameter (":pid", "v:major") matches one segment; a literal, itself.
      if (!s.includes(':') && decoded(r).toLowerCase() !== s.toLowerCase()) return 'no'
    }
  }
  return at === real.length ? 'yes' : 'no'
}

/** The template of the mount prefix: each path without its trailing slash ("/" adds nothing), a RegExp as written. */
function template(chain: readonly unknown[]): string {
  return chain.map((p) => (typeof p === 'string' ? p.replace(/\/+$/, '') : String(p))).join('')
}

function mountTemplate(req: ExpressRequest, routePath: string, baseUrl: string): string | undefined {
  const root = req.app?.router
  if (!listsRoutes(root)) return undefined
  for (const reread of [false, true]) {
    const sure = new Set<string>()
    const maybe = new Set<string>()
    for (const chain of chainsFor(root, routePath, reread)) {
      const fit = fits(chain, baseUrl)
      if (fit === 'yes') sure.add(template(chain))
      else if (fit === 'maybe') maybe.add(template(chain))
    }
    const found = sure.size > 0 ? sure : maybe
    if (found.size === 1) return [...found][0]
    // Two templates explain the prefix equally well: which one answered is unknown.
    if (found.size > 1) return undefined
  }
  return undefined
}

/**
 * The `route` label of a finished request: the route template with its mount templates
 * (`/patients/:pid/records`), `healthPath` for the built-in health report, `unknown_mount`, or
 * `unmatched`. Never a byte of the URL.
 *
 * @example
 * res.once('close', () => requests.inc({ route: routeLabel(req, '/healthz') }))
 */
export function routeLabel(req: http.IncomingMessage, healthPath: string | undefined): string {
  const r = req as ExpressRequest
  const routePath = r.route?.path
  if (routePath === undefined || routePath === null) {
    if (healthPath !== undefined && req.url !== undefined && req.url.split('?')[0] === healthPath) return healthPath
    return UNMATCHED
  }
  const baseUrl = typeof r.baseUrl === 'string' ? r.baseUrl : ''
  // A route of the app's own router: its template is the whole path.
  if (baseUrl === '' || baseUrl === '/') return String(routePath)
  if (typeof routePath !== 'string') return UNKNOWN_MOUNT
  const mount = mountTemplate(r, routePath, baseUrl)
  return mount === undefined ? UNKNOWN_MOUNT : `${mount}${routePath}`
}
