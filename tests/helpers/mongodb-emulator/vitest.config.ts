import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Runs the emulator's own tests until vitest.config.ts has a project for them:
//   npx vitest run -c tests/helpers/mongodb-emulator/vitest.config.ts
// No global setup: these tests need no PostgreSQL.
export default defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: {
    include: ['tests/backends/mongodb/emulator.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
