// `pnpm test`: the type check and the vitest suite side by side, failing when either fails.
// tsc is single-threaded and most tests wait on sockets and child processes, so on 2 cores the
// check (about 10 s of CPU cold, 4 s with --incremental and nothing changed) hides behind the
// suite instead of running before it. Arguments go to vitest: `pnpm test test/tls.test.ts`.
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)
const cache = path.join(root, 'node_modules', '.cache', 'tsc')
mkdirSync(cache, { recursive: true })

/** Run a command with inherited output; resolve its exit code (1 when it died by a signal). */
function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' })
    child.once('error', (err) => {
      console.error(`${cmd}: ${err.message}`)
      resolve(1)
    })
    child.once('exit', (code) => resolve(code ?? 1))
  })
}

// The type check's output is held back until the suite is done, so it is not lost in the middle
// of vitest's report; --incremental keeps its state in node_modules/.cache/tsc.
const typecheck = new Promise((resolve) => {
  const child = spawn(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit', '--incremental', '--tsBuildInfoFile', path.join(cache, 'tsconfig.tsbuildinfo')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  child.once('error', (err) => resolve({ code: 1, out: `tsc: ${err.message}\n` }))
  child.once('exit', (code) => resolve({ code: code ?? 1, out }))
})
const tests = await run(bin('vitest'), ['run', ...process.argv.slice(2)])
const checked = await typecheck
if (checked.code !== 0) process.stdout.write(`\ntypecheck failed (tsc -p tsconfig.json):\n${checked.out}`)
else process.stdout.write('typecheck: ok\n')
process.exitCode = tests !== 0 ? tests : checked.code
