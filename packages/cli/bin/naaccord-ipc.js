#!/usr/bin/env node
// The `naaccord-ipc` command. It runs the compiled CLI (dist/cli.js). In a monorepo checkout that
// has not been built yet, it falls back to the TypeScript source through tsx, in a child node
// with the "@naaccord/source" condition so that workspace packages resolve to their sources too;
// without tsx it says to build first. Nothing here needs a build step of its own.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const dist = new URL('../dist/cli.js', import.meta.url)
const source = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

async function runDist() {
  try {
    const { main } = await import(dist.href)
    return await main(args)
  } catch (err) {
    // dist/ exists but a workspace dependency (e.g. @naaccord/ipc-shared) has not been built.
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && existsSync(source)) return undefined
    throw err
  }
}

// Resolved from this file, not from the working directory, which may be anywhere.
function resolveTsx() {
  try {
    return import.meta.resolve('tsx')
  } catch {
    return undefined
  }
}

function runSource(tsx) {
  const child = spawnSync(process.execPath, ['--conditions=@naaccord/source', '--import', tsx, source, ...args], { stdio: 'inherit' })
  if (child.error) throw child.error
  return child.status ?? 1
}

let code = existsSync(fileURLToPath(dist)) ? await runDist() : undefined
if (code === undefined) {
  const tsx = existsSync(source) ? resolveTsx() : undefined
  if (tsx !== undefined) {
    code = runSource(tsx)
  } else {
    process.stderr.write('naaccord-ipc: the CLI is not built (dist/cli.js is missing); run "pnpm build" in the naaccord-ipc checkout first\n')
    code = 1
  }
}
process.exitCode = code
