import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    // Each file gets its own database; files run in parallel on the two cores.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { SUPERDUPER_LOG_LEVEL: process.env.SUPERDUPER_LOG_LEVEL ?? 'silent' },
  },
});
