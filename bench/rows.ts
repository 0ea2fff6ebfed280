import type { ClientKind } from './clients.js'
import { CLIENT_LABELS } from './clients.js'
import type { Handshake } from './connection-setup.js'
import type { EndpointName } from './protocol.js'

export type SectionId = 'hop' | 'matrix' | 'setup' | 'clients' | 'framework'

export const SECTIONS: ReadonlyArray<{ id: SectionId; title: string; about: string }> = [
  {
    id: 'hop',
    title: '0. The whole hop (what users feel)',
    about:
      'keep-alive load -> the public web app (Express on TCP 127.0.0.1, its own process) -> services (the example-shaped Express app, in the server child) and back. ' +
      'Only the way the web app calls services differs. CPU per request is measured in both processes; "hop CPU" is their sum.',
  },
  {
    id: 'matrix',
    title: '1. Transport matrix (keep-alive)',
    about: '{TCP loopback, Unix socket} x {plain, mutual TLS 1.3} x {bare node:http, Express via serve()}; keep-alive connections held for the whole run, no pipelining.',
  },
  {
    id: 'setup',
    title: '2. Connection setup (a new connection per request)',
    about: 'Connect, handshake, one request with Connection: close, read to the end; full TLS 1.3 handshakes vs resumed sessions (tickets).',
  },
  {
    id: 'clients',
    title: '3. Clients over the Unix socket (bare node:http server)',
    about: 'Closed loop, keep-alive, as many connections as requests in flight; client CPU is the load generator\'s CPU per request.',
  },
  {
    id: 'framework',
    title: '4. Framework overhead (Unix socket, plain, keep-alive)',
    about: 'The same Express app through serve() and on a plain server.listen(path); then one serve() feature off at a time.',
  },
]

export const CONCURRENCIES = [1, 32] as const

export type Load = { kind: 'keep-alive' } | { kind: 'client'; client: ClientKind } | { kind: 'setup'; handshake: Handshake | undefined }

export interface RowSpec {
  /** Stable id, used by --only, --profile and the JSON. */
  readonly id: string
  readonly endpoint: EndpointName
  readonly concurrency: number
  readonly load: Load
  readonly transport: 'tcp' | 'unix'
  readonly tls: boolean
  /** Where the row is shown, under which label (a row can serve two sections and is measured once). */
  readonly appears: ReadonlyArray<{ readonly section: SectionId; readonly label: string }>
}

/** The row every ratio is taken against, at the same concurrency: plain HTTP, TCP loopback, bare node:http. */
export const baselineId = (concurrency: number) => `tcp-plain-bare-c${concurrency}`

const TRANSPORT = { tcp: 'TCP', unix: 'Unix' } as const
const security = (tls: boolean) => (tls ? 'mTLS 1.3' : 'plain')

function keepAliveRow(handler: 'bare' | 'serve', transport: 'tcp' | 'unix', tls: boolean, c: number): RowSpec {
  const sec = tls ? 'tls' : 'plain'
  const appears: Array<{ section: SectionId; label: string }> = [
    { section: 'matrix', label: `${TRANSPORT[transport]} · ${security(tls)} · ${handler === 'bare' ? 'node:http' : 'Express via serve()'}` },
  ]
  if (handler === 'serve' && transport === 'unix' && !tls) {
    appears.push({ section: 'framework', label: 'serve(): peer check + request id + request log (file)' })
  }
  return { id: `${transport}-${sec}-${handler}-c${c}`, endpoint: `${handler}-${transport}-${sec}`, concurrency: c, load: { kind: 'keep-alive' }, transport, tls, appears }
}

/** The ways the web app calls services, in the order a round measures them. */
export const HOPS = [
  ['hop-agent', 'today: node:http keep-alive Agent -> Express on TCP'],
  ['hop-undici', 'today, undici Agent -> Express on TCP'],
  ['hop-ours', 'naaccord-ipc: our client -> serve() on the socket (defaults: peer check, request log)'],
  ['hop-ours-tls', 'naaccord-ipc: the same with mutual TLS 1.3'],
] as const

function hopRow(endpoint: (typeof HOPS)[number][0], label: string, c: number): RowSpec {
  const tls = endpoint === 'hop-ours-tls'
  return { id: `${endpoint}-c${c}`, endpoint, concurrency: c, load: { kind: 'keep-alive' }, transport: endpoint.startsWith('hop-ours') ? 'unix' : 'tcp', tls, appears: [{ section: 'hop', label }] }
}

function frameworkRow(endpoint: 'express-unix-plain' | 'serve-unix-plain-nopeer' | 'serve-unix-plain-nolog' | 'serve-unix-plain-twin', label: string, c: number): RowSpec {
  return { id: `${endpoint}-c${c}`, endpoint, concurrency: c, load: { kind: 'keep-alive' }, transport: 'unix', tls: false, appears: [{ section: 'framework', label }] }
}

function clientRow(client: ClientKind, c: number): RowSpec {
  return {
    id: `client-${client}-c${c}`,
    endpoint: 'bare-unix-plain',
    concurrency: c,
    load: { kind: 'client', client },
    transport: 'unix',
    tls: false,
    appears: [{ section: 'clients', label: CLIENT_LABELS[client] }],
  }
}

function setupRows(c: number): RowSpec[] {
  const rows: RowSpec[] = []
  for (const transport of ['tcp', 'unix'] as const) {
    for (const handshake of [undefined, 'full', 'resumed'] as const) {
      const tls = handshake !== undefined
      const label = `${TRANSPORT[transport]} · ${tls ? `mTLS 1.3, ${handshake === 'full' ? 'full handshake' : 'resumed session'}` : 'plain'} · node:http`
      rows.push({
        id: `setup-${transport}-${handshake ?? 'plain'}-bare-c${c}`,
        endpoint: `bare-${transport}-${tls ? 'tls' : 'plain'}`,
        concurrency: c,
        load: { kind: 'setup', handshake },
        transport,
        tls,
        appears: [{ section: 'setup', label }],
      })
    }
  }
  // serve()'s per-connection work (SO_PEERCRED, the peer entry) shows only when connections are new.
  for (const [id, endpoint, label] of [
    ['setup-unix-plain-serve', 'serve-unix-plain', 'Unix · plain · Express via serve(), peer check on'],
    ['setup-unix-plain-serve-nopeer', 'serve-unix-plain-nopeer', 'Unix · plain · Express via serve(), peer check off'],
  ] as const) {
    rows.push({ id: `${id}-c${c}`, endpoint, concurrency: c, load: { kind: 'setup', handshake: undefined }, transport: 'unix', tls: false, appears: [{ section: 'setup', label }] })
  }
  return rows
}

/**
 * Every row, in the order a round measures them: per concurrency, rows that a target compares sit
 * next to each other (measured seconds apart), so a burst of load from elsewhere on the machine
 * hits both sides of a ratio alike. Sections show their rows in this order too.
 */
export function buildRows(): RowSpec[] {
  const rows: RowSpec[] = []
  for (const c of CONCURRENCIES) {
    rows.push(
      ...HOPS.map(([endpoint, label]) => hopRow(endpoint, label, c)),
      keepAliveRow('bare', 'tcp', false, c),
      keepAliveRow('bare', 'unix', false, c),
      keepAliveRow('bare', 'tcp', true, c),
      keepAliveRow('bare', 'unix', true, c),
      keepAliveRow('serve', 'unix', true, c),
      keepAliveRow('serve', 'tcp', false, c),
      keepAliveRow('serve', 'unix', false, c),
      frameworkRow('express-unix-plain', 'the same Express app on server.listen(path)', c),
      frameworkRow('serve-unix-plain-twin', 'serve() again: a second server with the same options (A/A)', c),
      frameworkRow('serve-unix-plain-nopeer', 'serve(), peer check off (allow: false)', c),
      frameworkRow('serve-unix-plain-nolog', 'serve(), request log off (requestLog: false)', c),
      keepAliveRow('serve', 'tcp', true, c),
      clientRow('ours', c),
      clientRow('node-http-agent', c),
      clientRow('undici-pool', c),
      clientRow('fetch-ours', c),
      ...setupRows(c),
    )
  }
  return rows
}

const MATRIX_ORDER = ['tcp-plain-bare', 'unix-plain-bare', 'tcp-tls-bare', 'unix-tls-bare', 'tcp-plain-serve', 'unix-plain-serve', 'tcp-tls-serve', 'unix-tls-serve']

/** The rows shown in a section, in reading order (the matrix by concurrency, handler, security, transport). */
export function rowsInSection<T extends { spec: RowSpec }>(rows: readonly T[], section: SectionId): T[] {
  const shown = rows.filter((r) => r.spec.appears.some((a) => a.section === section))
  if (section !== 'matrix') return shown
  const key = (r: T) => r.spec.concurrency * 100 + MATRIX_ORDER.indexOf(r.spec.id.replace(/-c\d+$/, ''))
  return [...shown].sort((a, b) => key(a) - key(b))
}
