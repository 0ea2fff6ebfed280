// `pnpm test:engines`: the tests that boot a real engine (systemd as PID 1, dockerd and compose,
// arm64 Node under qemu-user), left out of `pnpm test` (see ENGINE_TESTS in vitest.config.ts).
// CI (.ci/run) runs it right after `pnpm test`. One file at a time: each keeps a core busy for
// most of its run, and their restarts-under-load counts are measured against wall-clock budgets.
// One file: `npx vitest run -c vitest.engines.config.ts test/docker-real.test.ts`.
import { defineConfig } from 'vitest/config'
import base, { ENGINE_TESTS } from './vitest.config.js'

export default defineConfig({
  ...base,
  test: { ...base.test, include: ENGINE_TESTS, exclude: [], maxWorkers: 1 },
})
