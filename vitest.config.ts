import { defineConfig } from 'vitest/config';

// Tests that need a server of their own: other processes connect to it (CLI,
// sidecar processes killed and restarted) or it is administered (CREATE EXTENSION,
// concurrent installers). The embedded database lives inside the test's process.
// The fault tests run servers of their own (restarted, crashed, failed over) and
// put a TCP proxy between sidecar and server.
const serverOnly = [
  'tests/install.test.ts',
  'tests/sidecars.test.ts',
  'tests/crash.test.ts',
  'tests/outages.test.ts',
  'tests/failover.test.ts',
  'tests/lost-connections.test.ts',
  'tests/faults-combined.test.ts',
  'tests/sidecar-exits.test.ts',
];
// What only the embedded database has: its session turns, wire endpoint, data-folder lock, the demo.
const embeddedOnly = ['tests/embedded.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['tests/helpers/global-setup.ts'],
    // Each file gets its own database; files run in parallel on the two cores.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'postgres',
          include: ['tests/**/*.test.ts'],
          exclude: embeddedOnly,
          env: { SUPERDUPER_LOG_LEVEL: process.env.SUPERDUPER_LOG_LEVEL ?? 'silent', SUPERDUPER_TEST_BACKEND: 'postgres' },
        },
      },
      {
        extends: true,
        test: {
          // The same tests on the embedded PGlite: same SQL layer, same results.
          name: 'pglite',
          include: ['tests/**/*.test.ts'],
          exclude: serverOnly,
          env: { SUPERDUPER_LOG_LEVEL: process.env.SUPERDUPER_LOG_LEVEL ?? 'silent', SUPERDUPER_TEST_BACKEND: 'pglite' },
        },
      },
    ],
  },
});
