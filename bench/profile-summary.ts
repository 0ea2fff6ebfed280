// Reads a V8 .cpuprofile (node --cpu-prof) and says where the server's CPU went: by package
// (ours, Express and its dependencies, pino, undici, Node core, V8) and by function.

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  startTime: number
  endTime: number
}

export interface Share {
  readonly name: string
  readonly ms: number
  /** Share of the busy (non-idle) time. */
  readonly share: number
}

export interface ProfileSummary {
  readonly busyMs: number
  readonly idleMs: number
  /** Self time by package. */
  readonly selfByPackage: readonly Share[]
  /**
   * Each busy sample charged to the innermost library frame on its stack (the closest caller that
   * is not Node core or V8), so Node's work on behalf of Express, pino or our code is charged to
   * them; samples with no library frame at all stay "node core".
   */
  readonly byCaller: readonly Share[]
  /** Self time by function. */
  readonly topFunctions: readonly Share[]
}

const CORE = 'node core'
const V8 = 'v8 (gc, compiler, builtins)'
const IDLE = '(idle)'

/** The package a frame belongs to: ours by workspace folder, others by their node_modules folder. */
export function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame
  if (url === '') {
    if (functionName === '(idle)') return IDLE
    if (functionName === '(root)') return '(root)'
    return V8
  }
  if (url.startsWith('node:')) return CORE
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  const ours = /\/packages\/([^/]+)\//.exec(url)
  if (ours) return `ours: @naaccord/ipc-${ours[1]}`
  if (url.includes('/bench/')) return 'bench harness'
  return url
}

const isLibrary = (pkg: string) => pkg !== CORE && pkg !== V8 && pkg !== IDLE && pkg !== '(root)'

function shares(map: Map<string, number>, busyMs: number, limit: number): Share[] {
  return [...map.entries()]
    .map(([name, ms]) => ({ name, ms, share: busyMs > 0 ? ms / busyMs : 0 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, limit)
}

export function summariseProfile(profile: CpuProfile, limit = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const msPerSample = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length)

  const counts = new Map<number, number>()
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)

  const self = new Map<string, number>()
  const caller = new Map<string, number>()
  const fns = new Map<string, number>()
  let busyMs = 0
  let idleMs = 0
  for (const [id, count] of counts) {
    const node = byId.get(id)!
    const ms = count * msPerSample
    const pkg = packageOf(node.callFrame)
    if (pkg === IDLE) {
      idleMs += ms
      continue
    }
    busyMs += ms
    self.set(pkg, (self.get(pkg) ?? 0) + ms)
    const f = node.callFrame
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|packages\/|bench\/)/, '$1')}:${f.lineNumber + 1}` : ''
    const fn = `${f.functionName || '(anonymous)'} ${where}`.trim()
    fns.set(fn, (fns.get(fn) ?? 0) + ms)
    let charged = isLibrary(pkg) ? pkg : undefined
    for (let up = parent.get(id); charged === undefined && up !== undefined; up = parent.get(up)) {
      const p = packageOf(byId.get(up)!.callFrame)
      if (isLibrary(p)) charged = p
    }
    const key = charged ?? (pkg === V8 ? V8 : CORE)
    caller.set(key, (caller.get(key) ?? 0) + ms)
  }
  return { busyMs, idleMs, selfByPackage: shares(self, busyMs, limit), byCaller: shares(caller, busyMs, limit), topFunctions: shares(fns, busyMs, limit) }
}
