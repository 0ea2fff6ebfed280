// The consumer test (`pnpm test:consumer`, run by .ci/run after the build): what a user gets from
// the registry, proven without the registry's copy of our packages.
//  1. `pnpm pack` every package (workspace:* rewritten, publishConfig applied, prepack builds dist/).
//  2. For npm and for pnpm 10 with its defaults (dependencies' install scripts blocked): a fresh
//     project in the temp folder, outside the checkout, its own package.json, no workspace; install
//     the tarballs with a PATH that has no cc/gcc/g++/make/python3 (a matching prebuild must make a
//     toolchain unnecessary).
//  3. Make certificates with the packed `naaccord-ipc certs` command (@naaccord/ipc-cli), then run a plain .mjs script that
//     serves an Express app with serve() and calls it with createClient(), over the socket and over
//     the socket with mutual TLS, checking req.peer.
//  4. (npm project) type-check a consumer .ts file with tsc: req.peer typing must reach Express.
// Prints the tarball sizes and each run's output. Registry access is needed for express, pino,
// undici... (npm's and pnpm's caches make repeated runs fast).
//
// `--arch arm64` (run by .ci/run after the x64 run): the same install, by npm only, run by the
// arm64 Node from npm (scripts/arm64-node.sh) under qemu-user: `node` on the toolchain-free PATH is
// a wrapper that runs it under qemu-aarch64, so npm itself (the host's npm-cli.js), the addon's
// install script and the consumer's script are all arm64 processes. node-gyp-build must pick
// prebuilds/linux-arm64/*.glibc.node by itself (NAACCORD_PEERCRED_ADDON is not set); the script
// (test/fixtures/arm64-serve.mjs, copied into the project) serves and calls over a Unix socket and
// checks the peer's uid and pid (as nobody when run as root, through setpriv), then scripts/consumer/arm64-addon.mjs exercises the addon's exports
// (getPeerCredentials, getPeerIds, inspectSocketFd, flock, sdNotify). Skips, saying why, where
// qemu-aarch64, the arm64 glibc or the arm64 Node is missing. About 25 s, 13-16 s of it npm install.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, tarballs } from './pack.mjs'

const started = Date.now()
const TOOLCHAIN = /^(cc|c\+\+|gcc|g\+\+|cpp|clang|clang\+\+|make|gmake|cmake|python|python[23](\.\d+)?|node-gyp)(-\d+(\.\d+)*)?$|^[\w-]+-linux-gnu-(gcc|g\+\+|cc|c\+\+|cpp)(-\d+)?$/
const rootPkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'naaccord-consumer-')))
if (work.startsWith(ROOT + path.sep)) throw new Error(`the consumer folder ${work} must be outside the checkout ${ROOT}`)
const keep = process.argv.includes('--keep')
const archArg = process.argv.indexOf('--arch')
const arch = archArg < 0 ? process.arch : process.argv[archArg + 1]
if (arch !== process.arch && arch !== 'arm64') throw new Error(`--arch ${arch}: only arm64 (under qemu-user) is supported`)

function log(line) {
  console.log(`consumer: ${line}`)
}

/** A PATH with every program of the current one except compilers, make and Python. */
function toolchainFreePath(node) {
  const bin = path.join(work, 'bin')
  mkdirSync(bin)
  const seen = new Set()
  if (node) {
    // `node` is the given binary (the arm64 Node under qemu): npm's `#!/usr/bin/env node` and the
    // install scripts it runs find this one.
    writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nexec ${node.map((a) => `'${a}'`).join(' ')} "$@"\n`, { mode: 0o755 })
    seen.add('node')
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    let names
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }
    for (const name of names) {
      if (seen.has(name) || TOOLCHAIN.test(name)) continue
      seen.add(name)
      symlinkSync(path.join(dir, name), path.join(bin, name))
    }
  }
  return bin
}

/** The environment of a user's shell: no npm_/pnpm_ variables inherited from `pnpm run`. */
function cleanEnv(PATH) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_OPTIONS$|NAACCORD_PEERCRED_ADDON$)/i.test(k)) env[k] = v
  return { ...env, PATH, NO_UPDATE_NOTIFIER: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}) in ${opts.cwd}\n${r.stdout ?? ''}${r.stderr ?? ''}`)
  }
  return r.stdout
}

/** Why the arm64 run cannot happen here, or false. */
function arm64Skip() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the qemu run is set up for a linux-x64 host'
  if (spawnSync('sh', ['-c', 'command -v qemu-aarch64']).status !== 0) return 'qemu-aarch64 is not installed (Debian: qemu-user)'
  if (!existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1')) return 'the arm64 glibc is not installed (Debian: libc6-arm64-cross)'
  return false
}

/** npm install of the tarballs and a serve + call, all by the arm64 Node under qemu-user. */
function arm64Consumer() {
  const skip = arm64Skip()
  const fetched = skip ? undefined : spawnSync(path.join(ROOT, 'scripts', 'arm64-node.sh'), { encoding: 'utf8' })
  if (skip || fetched.status !== 0) {
    log(`arm64: skipped: ${skip || `no arm64 Node: scripts/arm64-node.sh failed: ${fetched.stderr.trim()}`}`)
    return
  }
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim()
  const arm64Node = fetched.stdout.trim()
  const packed = tarballs(path.join(work, 'tarballs'))
  const PATH = toolchainFreePath([qemu, '-L', '/usr/aarch64-linux-gnu', arm64Node])
  const missing = spawnSync('sh', ['-c', 'for t in cc gcc g++ c++ make python3 node-gyp; do command -v $t; done; true'], { encoding: 'utf8', env: { PATH } })
  if (missing.stdout.trim() !== '') throw new Error(`the stripped PATH still has: ${missing.stdout.trim()}`)
  const env = cleanEnv(PATH)
  const probe = run('node', ['-p', 'process.arch + " " + process.version'], { cwd: work, env }).trim()
  if (!probe.startsWith('arm64 ')) throw new Error(`node on the PATH is not the arm64 Node: ${probe}`)
  log(`arm64: node on the PATH is ${probe} (${arm64Node} under ${qemu}); no cc, gcc, g++, c++, make, python3, node-gyp`)

  const dir = path.join(work, 'arm64-project')
  mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 })
  const names = ['@naaccord/ipc-server', '@naaccord/ipc-client', '@naaccord/ipc-peercred']
  const deps = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'naaccord-consumer-arm64', private: true, type: 'module', dependencies: Object.fromEntries(names.map((n) => [n, deps[n]])), overrides: Object.fromEntries(packed.map((p) => [p.name, deps[p.name]])) }, null, 2),
  )
  copyFileSync(path.join(ROOT, 'test', 'fixtures', 'arm64-serve.mjs'), path.join(dir, 'arm64-serve.mjs'))
  copyFileSync(path.join(ROOT, 'scripts', 'consumer', 'arm64-addon.mjs'), path.join(dir, 'arm64-addon.mjs'))
  // The host's npm (JavaScript), run by the arm64 Node.
  const npmCli = path.join(path.dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())), 'npm-cli.js')
  let t0 = Date.now()
  run('node', [npmCli, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env })
  const installMs = Date.now() - t0
  const addonDir = realpathSync(path.join(dir, 'node_modules', '@naaccord', 'ipc-peercred'))
  const expected = path.join(addonDir, 'prebuilds', 'linux-arm64', '@naaccord+ipc-peercred.glibc.node')
  const statusFile = path.join(addonDir, 'install-status.json')
  if (!existsSync(statusFile)) throw new Error('arm64 npm: the addon install script did not run')
  const status = JSON.parse(readFileSync(statusFile, 'utf8'))
  if (status.status !== 'prebuilt' || status.target !== 'linux-arm64' || status.detail !== expected) throw new Error(`arm64 npm: the install script should have found ${expected}, install-status says ${JSON.stringify(status)}`)
  if (existsSync(path.join(addonDir, 'build'))) throw new Error(`arm64 npm: the addon was compiled (${addonDir}/build exists)`)
  log(`arm64 npm install (under qemu): ${installMs} ms; install script on ${status.target} ${status.node}: prebuilt ${path.relative(addonDir, status.detail)}; no build/ folder`)

  // As root (CI), serve and call as nobody (65534), so that the uid the kernel reports is not root's.
  const asNobody = process.getuid() === 0 && spawnSync('sh', ['-c', 'command -v setpriv']).status === 0
  let uid = process.getuid()
  let serveCmd = ['node', ['arm64-serve.mjs', path.join(dir, 'run', 's.sock')]]
  if (asNobody) {
    uid = 65534
    for (const d of [work, dir]) chmodSync(d, 0o755)
    chownSync(path.join(dir, 'run'), uid, uid)
    serveCmd = ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...serveCmd.flat()]]
  }
  t0 = Date.now()
  const out = run(serveCmd[0], serveCmd[1], { cwd: dir, env }).trim()
  const result = JSON.parse(out.split('\n').at(-1))
  if (result.arch !== 'arm64' || result.uid !== uid || !(result.pid > 0) || result.addon !== expected) throw new Error(`arm64 serve: unexpected ${out} (want arch arm64, uid ${uid}, addon ${expected})`)
  log(`arm64 serve() + createClient() over a Unix socket${asNobody ? ' as nobody (uid 65534)' : ''} (${Date.now() - t0} ms): ${out}`)

  t0 = Date.now()
  const addonOut = run('node', ['arm64-addon.mjs', path.join(dir, 'run')], { cwd: dir, env }).trim()
  const facts = JSON.parse(addonOut.split('\n').at(-1))
  if (facts.addon !== expected) throw new Error(`arm64 addon: loaded ${facts.addon}, want ${expected}`)
  log(`arm64 addon exports (${Date.now() - t0} ms): ${addonOut}`)
  log(`arm64 passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

try {
  if (arch === 'arm64') arm64Consumer()
  else {
    const packed = tarballs(path.join(work, 'tarballs'))
    log(`tarballs in ${path.dirname(packed[0].tarball)} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
    const PATH = toolchainFreePath()
    const missing = spawnSync('sh', ['-c', 'for t in cc gcc g++ c++ make python3 node-gyp; do command -v $t; done; true'], { encoding: 'utf8', env: { PATH } })
    if (missing.stdout.trim() !== '') throw new Error(`the stripped PATH still has: ${missing.stdout.trim()}`)
    log(`PATH for installs and runs has no cc, gcc, g++, c++, make, python3, node-gyp (${PATH})`)
    const env = cleanEnv(PATH)

    const deps = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
    const outputs = {}
    for (const manager of ['npm', 'pnpm']) {
      const dir = path.join(work, `${manager}-project`)
      mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 })
      const pkg = {
        name: `naaccord-consumer-${manager}`,
        private: true,
        type: 'module',
        dependencies: { ...deps, express: rootPkg.devDependencies.express },
        devDependencies: manager === 'npm' ? { '@types/express': rootPkg.devDependencies['@types/express'], '@types/node': rootPkg.devDependencies['@types/node'] } : {},
      }
      // Our packages depend on each other at an exact version that is not on the registry yet: point
      // those at the tarballs too, as the registry would.
      if (manager === 'npm') pkg.overrides = Object.fromEntries(packed.map((p) => [p.name, `$${p.name}`]))
      else pkg.pnpm = { overrides: deps }
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2))
      copyFileSync(path.join(ROOT, 'scripts', 'consumer', 'consumer.mjs'), path.join(dir, 'consumer.mjs'))
      const t0 = Date.now()
      if (manager === 'npm') run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env })
      else run('pnpm', ['install', '--prefer-offline', '--config.confirmModulesPurge=false'], { cwd: dir, env })
      const addonDir = realpathSync(path.join(dir, 'node_modules', '@naaccord', 'ipc-peercred'))
      const status = existsSync(path.join(addonDir, 'install-status.json')) ? JSON.parse(readFileSync(path.join(addonDir, 'install-status.json'), 'utf8')).status : 'install script not run'
      if (existsSync(path.join(addonDir, 'build'))) throw new Error(`${manager}: the addon was compiled (${addonDir}/build exists); the prebuild should have been used`)
      if (manager === 'npm' && status !== 'prebuilt') throw new Error(`npm: the install script should have found the prebuild, install-status says ${status}`)
      if (manager === 'pnpm' && status !== 'install script not run') throw new Error(`pnpm 10 should have blocked the install script, install-status says ${status}`)
      log(`${manager} install: ${Date.now() - t0} ms; addon install script: ${status}; no build/ folder (the prebuilt binary is used)`)

      const certs = path.join(dir, 'certs')
      const cli = path.join(dir, 'node_modules', '.bin', 'naaccord-ipc')
      run(cli, ['certs', 'init', '--dir', certs], { cwd: dir, env })
      run(cli, ['certs', 'issue', 'server', '--dir', certs, '--name', 'localhost'], { cwd: dir, env })
      run(cli, ['certs', 'issue', 'client', '--dir', certs, '--name', 'web-server'], { cwd: dir, env })
      // The operator commands load the server and the addon from the installed command package.
      const doctor = spawnSync(cli, ['doctor', '--socket', path.join(dir, 'run', 'none.sock'), '--json'], { cwd: dir, env, encoding: 'utf8' })
      const report = doctor.status === 2 ? JSON.parse(doctor.stdout) : undefined
      if (!report?.findings?.some((f) => f.severity === 'critical')) throw new Error(`${manager}: naaccord-ipc doctor on a missing socket should exit 2 with a critical finding (${doctor.status}): ${doctor.stdout}${doctor.stderr}`)
      log(`${manager} naaccord-ipc doctor on a missing socket: exit 2, ${report.findings.filter((f) => f.severity === 'critical').map((f) => f.check).join(', ')} critical`)
      const out = run('node', ['consumer.mjs', certs], { cwd: dir, env }).trim()
      outputs[manager] = JSON.parse(out.split('\n').at(-1))
      log(`${manager} consumer.mjs: ${out}`)

      if (manager === 'npm') {
        copyFileSync(path.join(ROOT, 'scripts', 'consumer', 'consumer.ts'), path.join(dir, 'consumer.ts'))
        writeFileSync(
          path.join(dir, 'tsconfig.json'),
          JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['consumer.ts'] }),
        )
        run('node', [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, env })
        log('npm tsc: consumer.ts type-checks (req.peer typed on Express requests, skipLibCheck off)')
      }
    }
    // What the split buys: the certs library installs neither the addon nor pino (the command,
    // @naaccord/ipc-cli, brings the server for run/reload/doctor). The client brings the
    // addon (its check of the server process is on by default), prebuilt: no compiler on PATH.
    const tarball = (name) => `file:${packed.find((p) => p.name === name).tarball}`
    for (const [project, names] of [
      ['certs-only', ['@naaccord/ipc-certs', '@naaccord/ipc-shared']],
      ['client-only', ['@naaccord/ipc-client', '@naaccord/ipc-shared', '@naaccord/ipc-peercred']],
    ]) {
      const dir = path.join(work, project)
      mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 })
      const dependencies = Object.fromEntries(names.map((n) => [n, tarball(n)]))
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: project, private: true, type: 'module', dependencies, overrides: Object.fromEntries(names.filter((n) => n !== names[0]).map((n) => [n, `$${n}`])) }))
      run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env })
      const present = ['@naaccord/ipc-peercred', 'node-gyp-build', 'pino'].filter((m) => existsSync(path.join(dir, 'node_modules', m)))
      if (project === 'certs-only') {
        if (present.length > 0) throw new Error(`certs-only: installed ${present.join(', ')}, which the certs library does not need`)
        if (existsSync(path.join(dir, 'node_modules', '.bin', 'naaccord-ipc'))) throw new Error('certs-only: the certs library installed a naaccord-ipc command (it is @naaccord/ipc-cli\'s)')
        const script = `import('@naaccord/ipc-certs').then(async (c) => { const ca = await c.initCa({ dir: ${JSON.stringify(path.join(dir, 'certs'))} }); console.log(c.inspectCertificate(ca.certPem).subject) })`
        const subject = run('node', ['--input-type=module', '-e', script], { cwd: dir, env }).trim()
        log(`certs-only (npm): no addon, no node-gyp-build, no pino, no command installed; initCa() works (${subject})`)
      } else {
        if (!present.includes('@naaccord/ipc-peercred')) throw new Error(`client-only: the addon the default server check needs was not installed (${present.join(', ')})`)
        copyFileSync(path.join(ROOT, 'scripts', 'consumer', 'client-only.mjs'), path.join(dir, 'client-only.mjs'))
        const out = run('node', ['client-only.mjs', path.join(dir, 'run', 's.sock')], { cwd: dir, env }).trim()
        outputs[project] = JSON.parse(out.split('\n').at(-1))
        log(`client-only (npm): addon installed prebuilt, default server check on; client-only.mjs: ${out}`)
      }
    }

    log('tarballs:')
    for (const p of packed) log(`  ${path.basename(p.tarball)}\t${(p.bytes / 1024).toFixed(1)} kB`)
    log(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
} finally {
  if (keep) log(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
