import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ENV, isIpcError, resolveSafeEntry, trustedUids } from '@naaccord/ipc-shared'
import type { SocketFacts } from './peer-credentials.js'

/** What native/peercred.c exports. */
export interface NativeBinding {
  getPeerCredentials(fd: number): { pid: number; uid: number; gid: number }
  support: { supported: boolean; mechanism: string; pid: boolean; platform: string }
  notify?(socketPath: string, state: string): boolean
  notifyListen?(socketPath: string): number
  notifyReceive?(fd: number): string | null
  notifyClose?(fd: number): void
  inspectSocket?(fd: number): SocketFacts
  dupCloexec?(fd: number): number
  peerPidfd?(fd: number): number | string
  pidfdAlive?(pidfd: number): boolean
  pidfdProbe?(): boolean
}

export type LoadedAddon = { ok: true; binding: NativeBinding; file: string } | { ok: false; reason: string; cause: unknown }

const PACKAGE = '@naaccord/ipc-peercred'
const require = createRequire(import.meta.url)
// src/ and dist/ both sit directly under the package root, where binding.gyp and prebuilds/ live.
const packageRoot = fileURLToPath(new URL('..', import.meta.url))

let loaded: LoadedAddon | undefined
// The NAACCORD_PEERCRED_ADDON file the loaded addon came from (undefined: the packaged one).
let loadedOverride: string | undefined

/** The first line of an error's message. */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n', 1)[0]?.trim() ?? text
}

/**
 * The addon file named by NAACCORD_PEERCRED_ADDON, when that test hook is set: it replaces the
 * packaged addon (and so the peer check) with any `.node` file. serve() names it in its start-up
 * security report, as a weakening, whenever it is in effect (see addonOverrideInEffect).
 *
 * @example
 * const override = addonOverride() // '/abs/path/fake.node' or undefined
 */
export function addonOverride(): string | undefined {
  const explicit = process.env[ENV.peerAddon]
  return explicit !== undefined && explicit.trim() !== '' ? path.resolve(explicit.trim()) : undefined
}

/**
 * The NAACCORD_PEERCRED_ADDON file in effect: once the addon is loaded (once per process), the
 * file it was loaded from if the variable named it, whatever the variable says now; before, the
 * variable's file. What the security report shows, so that it never says "packaged" while a
 * test hook's addon decides who a peer is.
 *
 * @example
 * addonOverrideInEffect() // undefined with the packaged addon
 */
export function addonOverrideInEffect(): string | undefined {
  return loaded ? loadedOverride : addonOverride()
}

function loadFrom(file: string, label: string, hint: string): LoadedAddon {
  let binding: NativeBinding
  try {
    binding = require(file) as NativeBinding
  } catch (err) {
    return { ok: false, reason: `the peer-credential addon could not be loaded from ${label}: ${firstLine(err)}${hint}`, cause: err }
  }
  if (typeof binding?.getPeerCredentials !== 'function' || typeof binding.support !== 'object') {
    return { ok: false, reason: `${label} is not the peer-credential addon (no getPeerCredentials export)`, cause: undefined }
  }
  return { ok: true, binding, file }
}

function libc(): string {
  if (process.platform !== 'linux') return ''
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  return header?.glibcVersionRuntime ? ' glibc' : ' musl'
}

function shippedPrebuilds(): string[] {
  try {
    return readdirSync(path.join(packageRoot, 'prebuilds')).sort()
  } catch {
    return []
  }
}

function installStatus(): { status?: string; detail?: string } | undefined {
  try {
    return JSON.parse(readFileSync(path.join(packageRoot, 'install-status.json'), 'utf8')) as { status?: string; detail?: string }
  } catch {
    return undefined
  }
}

/**
 * Why no addon was found, and what to do: the platforms that ship a prebuilt binary, and whether the
 * install script ran and failed to build from source, or never ran (pnpm 10 blocks dependencies'
 * install scripts unless allowed).
 */
export function explainMissingAddon(): string {
  const platform = `${process.platform}-${process.arch}${libc()}`
  const shipped = shippedPrebuilds()
  const prebuilds = `no prebuilt binary for ${platform} in ${PACKAGE} (it ships: ${shipped.length > 0 ? shipped.join(', ') : 'none'})`
  const toolchain = `install make, a C compiler and Python 3, then run "npm rebuild ${PACKAGE}" (pnpm: "pnpm rebuild ${PACKAGE}")`
  const status = installStatus()
  if (status?.status === 'build-failed') {
    return `${prebuilds}, and the source build at install failed (${status.detail ?? 'see the install log'}): ${toolchain}`
  }
  return (
    `${prebuilds}, and no source build in ${path.join(packageRoot, 'build', 'Release')}: its install script did not run ` +
    `(pnpm 10 blocks dependencies' install scripts). Allow it: add "${PACKAGE}" to "pnpm.onlyBuiltDependencies" in your ` +
    `package.json (or run "pnpm approve-builds") and reinstall, with make, a C compiler and Python 3 installed; ` +
    `with npm, do not install with --ignore-scripts`
  )
}

/**
 * The override replaces the peer check itself, so it is loaded only through the safe-path rules:
 * a regular `.node` file owned by this process's uid or root, every folder and link on the way
 * owned by one of them and writable by nobody else. Another user's file (or one in a folder they
 * can change) is refused with IPC_UNSAFE_PATH, which the peer check reports instead of loading it.
 */
function loadOverride(explicit: string): LoadedAddon {
  const label = `${explicit} (from ${ENV.peerAddon})`
  // require() would run a .js file as code; only a native addon is wanted here.
  if (path.extname(explicit) !== '.node') return { ok: false, reason: `${label} is not a .node file`, cause: undefined }
  let real: string
  try {
    const entry = resolveSafeEntry(explicit, 'file', { kind: 'file', label: 'the addon override', option: ENV.peerAddon }, trustedUids())
    if ('missing' in entry) return { ok: false, reason: `${label} does not exist (${entry.missing} is missing)`, cause: undefined }
    real = entry.realPath
  } catch (err) {
    if (isIpcError(err)) return { ok: false, reason: `${label} refused: ${err.message}`, cause: err }
    throw err
  }
  return loadFrom(real, label, '')
}

/**
 * Loads the native addon once per process: NAACCORD_PEERCRED_ADDON when set (a `.node` file only),
 * else the packaged one through node-gyp-build (build/Release from a source build, then
 * prebuilds/<platform>-<arch>/ for the matching N-API prebuilt binary). Never throws; a failure is
 * remembered with the reason, so a missing addon costs one look-up, not one per connection.
 *
 * @example
 * const addon = loadAddon()
 * if (!addon.ok) console.error(addon.reason)
 */
export function loadAddon(): LoadedAddon {
  if (loaded) return loaded
  const explicit = addonOverride()
  if (explicit !== undefined) {
    loadedOverride = explicit
    loaded = loadOverride(explicit)
    return loaded
  }
  let file: string
  try {
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string }
    file = nodeGypBuild.path(packageRoot)
  } catch (err) {
    loaded = { ok: false, reason: `the peer-credential addon is missing: ${explainMissingAddon()}`, cause: err }
    return loaded
  }
  const prebuilt = file.includes(`${path.sep}prebuilds${path.sep}`)
  const hint = prebuilt
    ? `. The prebuilt binary does not fit this system: build from source instead (make, a C compiler and Python 3): "npm rebuild ${PACKAGE} --build-from-source"`
    : `. Rebuild it: "npm rebuild ${PACKAGE}" (pnpm: "pnpm rebuild ${PACKAGE}")`
  loaded = loadFrom(file, file, existsSync(file) ? hint : '')
  return loaded
}

/**
 * The native addon as loaded once per process (module object), or why it could not be loaded.
 * For the other native functions of the addon (flock in file-lock.ts); not part of the API.
 *
 * @example
 * const addon = loadNativeAddon()
 * if (addon.ok && typeof addon.binding.flock === 'function') addon.binding.flock(fd, true, true)
 */
export function loadNativeAddon(): { ok: true; binding: Record<string, unknown>; file: string } | { ok: false; reason: string } {
  const result = loadAddon()
  return result.ok ? { ok: true, binding: result.binding as unknown as Record<string, unknown>, file: result.file } : { ok: false, reason: result.reason }
}
