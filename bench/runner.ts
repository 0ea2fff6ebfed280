import { spawn } from 'node:child_process'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const MARK = 'NIPC_BENCH_RUNNER'
export type Runner = 'tsc' | 'tsx'

/** Node flags that load our TypeScript sources with `runner` (see bench/tsc-loader.mjs for why tsc). */
export function runnerFlags(runner: Runner, root: string): string[] {
  const loader = runner === 'tsc' ? pathToFileURL(path.join(root, 'bench', 'tsc-loader.mjs')).href : 'tsx'
  return ['--conditions=@naaccord/source', '--import', loader]
}

/** The runner this process was started with by reexecWith, or undefined in the first process. */
export function currentRunner(): Runner | undefined {
  const v = process.env[MARK]
  return v === 'tsc' || v === 'tsx' ? v : undefined
}

/**
 * `pnpm bench` starts under tsx; start this same script again in a Node process that loads our
 * packages with `runner`, so that the client rows (which run in this process) measure the code as
 * it ships. Resolves with the exit code of that process.
 */
export function reexecWith(runner: Runner, root: string, script: string): Promise<number> {
  const child = spawn(process.execPath, [...runnerFlags(runner, root), script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: runner },
  })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))))
}
