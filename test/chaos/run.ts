// The chaos suite: `pnpm test:chaos` (builds first; real processes over dist/, loopback and
// Unix sockets only, every loop bounded in count and time). Prints one table. Exits 1 only when
// a hard invariant breaks (a POST lost or run twice under the supervisor, a stuck start, two
// winners of a race, a server down after hostile input); a missed target prints FAIL.
// Run one scenario: `pnpm test:chaos rolling` (names below).
import { crashLoopSupervised, crashLoopUnsupervised, overlap, plainRestarts, rollingReloads } from './restarts.js'
import { killPoints, startRace } from './lifecycle.js'
import { connectionFlood, hostileInput } from './hostile.js'
import { check, printTable, rows } from './lib.js'

const SCENARIOS: Record<string, () => Promise<void>> = {
  rolling: rollingReloads,
  restarts: plainRestarts,
  'crash-supervised': crashLoopSupervised,
  'crash-unsupervised': crashLoopUnsupervised,
  'kill-points': () => killPoints(),
  race: startRace,
  overlap,
  hostile: hostileInput,
  flood: connectionFlood,
}

const pick = process.argv.slice(2)
const names = pick.length > 0 ? pick : Object.keys(SCENARIOS)
const t0 = Date.now()
// A hard ceiling for the whole run: a wedged scenario must not hang CI.
const ceiling = setTimeout(() => {
  process.stdout.write(`\n${printTable()}\n\nchaos: gave up after ${((Date.now() - t0) / 1000).toFixed(0)} s (ceiling)\n`)
  process.exit(1)
}, 290_000)
ceiling.unref()
for (const name of names) {
  const fn = SCENARIOS[name]
  if (!fn) {
    process.stderr.write(`chaos: unknown scenario "${name}"; one of ${Object.keys(SCENARIOS).join(', ')}\n`)
    process.exit(2)
  }
  const t = Date.now()
  process.stdout.write(`chaos: ${name} ...`)
  try {
    await fn()
  } catch (err) {
    check(name, 'scenario ran', `crashed: ${(err as Error).message}`, false, 'ran to the end', true)
  }
  process.stdout.write(` ${((Date.now() - t) / 1000).toFixed(1)} s\n`)
}
clearTimeout(ceiling)
process.stdout.write(`\n${printTable()}\n\nchaos: ${names.length} scenarios in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
const hard = rows.filter((r) => r.result === 'HARD')
if (hard.length > 0) {
  process.stdout.write(`chaos: ${hard.length} hard invariant(s) broken: ${hard.map((r) => `${r.scenario} / ${r.metric}`).join('; ')}\n`)
  process.exit(1)
}
process.exit(0)
