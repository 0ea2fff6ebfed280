import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url))

/**
 * The tests that boot a real engine: systemd as PID 1 on a debootstrap root, dockerd with
 * compose, an arm64 Node under qemu-user. About 75 s of the suite's time and most of its CPU,
 * so they run in `pnpm test:engines` (vitest.engines.config.ts), which CI runs right after
 * `pnpm test`; `pnpm test`, the loop run after each change, leaves them out.
 */
export const ENGINE_TESTS = ['test/systemd-real.test.ts', 'test/docker-real.test.ts', 'test/prebuilds-arm64.test.ts']

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources, not dist/: no build step before `pnpm test`.
    alias: [
      { find: /^@naaccord\/ipc-shared$/, replacement: src('shared') },
      { find: /^@naaccord\/ipc-shared\/logger$/, replacement: fileURLToPath(new URL('./packages/shared/src/logger.ts', import.meta.url)) },
      { find: /^@naaccord\/ipc-server$/, replacement: src('server') },
      { find: /^@naaccord\/ipc-server\/supervisor$/, replacement: fileURLToPath(new URL('./packages/server/src/supervisor/index.ts', import.meta.url)) },
      { find: /^@naaccord\/ipc-client$/, replacement: src('client') },
      { find: /^@naaccord\/ipc-certs$/, replacement: src('certs') },
      { find: /^@naaccord\/ipc-cli$/, replacement: src('cli') },
      { find: /^@naaccord\/ipc-peercred$/, replacement: src('peercred') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...ENGINE_TESTS],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // vitest's default is one fork fewer than the cores: a single fork on a 2-core machine, every
    // file in turn. Most tests wait on sockets, timers and child processes, not on the CPU, so
    // more forks than cores pay. Measured on 2 cores under a load average of about 15, the 12
    // slowest files: 3 forks 187 s with 1 timing failure, 6 forks 151 s with 6 (flood and
    // restart-under-load tests starved of CPU). VITEST_MAX_WORKERS (or --maxWorkers) overrides it.
    maxWorkers: 3,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
