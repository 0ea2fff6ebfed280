// The consumer test (`pnpm test:consumer`, run by .ci/run after the build): what a user gets from
// the registry, proven without the registry's copy of our packages.
//  1. `pnpm pack` every package (workspace:* rewritten, publishConfig applied, prepack builds dist/).
//  2. For npm and for pnpm 10 with its defaults (dependencies' install scripts blocked): a fresh
//     project in the temp folder, outside the checkout, its own package.json, no workspace; install
//     the tarballs with a PATH that has no cc/gcc/g++/make/python3 (a matching prebuild must make a
//     toolchain unnecessary).
//  3. Make certificates with the packed `naaccord-ipc certs` CLI, then run a plain .mjs script that
//     serves an Express app with serve() and calls it with createClient(), over the socket and over
//     the socket with mutual TLS, checking req.peer.
//  4. (npm project) type-check a consumer .ts file with tsc: req.peer typing must reach Express.
// Prints the tarball sizes and each run's output. Registry access is needed for express, pino,
// undici... (npm's and pnpm's caches make repeated runs fast).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, tarballs } from './pack.mjs'

const started = Date.now()
const TOOLCHAIN = /^(cc|c\+\+|gcc|g\+\+|cpp|clang|clang\+\+|make|gmake|cmake|python|python[23](\.\d+)?|node-gyp)(-\d+(\.\d+)*)?$|^[\w-]+-linux-gnu-(gcc|g\+\+|cc|c\+\+|cpp)(-\d+)?$/
const rootPkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'naaccord-consumer-')))
if (work.startsWith(ROOT + path.sep)) throw new Error(`the consumer folder ${work} must be outside the checkout ${ROOT}`)
const keep = process.argv.includes('--keep')

function log(line) {
  console.log(`consumer: ${line}`)
}

/** A PATH with every program of the current one except compilers, make and Python. */
function toolchainFreePath() {
  const bin = path.join(work, 'bin')
  mkdirSync(bin)
  const seen = new Set()
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
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_OPTIONS$)/i.test(k)) env[k] = v
  return { ...env, PATH, NO_UPDATE_NOTIFIER: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}) in ${opts.cwd}\n${r.stdout ?? ''}${r.stderr ?? ''}`)
  }
  return r.stdout
}

try {
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
  // What the split buys: the certs CLI installs neither the addon nor pino. The client brings the
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
      if (present.length > 0) throw new Error(`certs-only: installed ${present.join(', ')}, which the certs CLI does not need`)
      run(path.join(dir, 'node_modules', '.bin', 'naaccord-ipc'), ['certs', 'init', '--dir', path.join(dir, 'certs')], { cwd: dir, env })
      log('certs-only (npm): no addon, no node-gyp-build, no pino installed; `naaccord-ipc certs init` works')
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
} finally {
  if (keep) log(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
