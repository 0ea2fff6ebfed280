import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url))

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
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
