import { defineConfig } from 'vitest/config';

// One project per backend: it runs the conformance suite (tests/conformance/,
// what every backend must do) and its own folder (tests/backends/<name>/, what
// only it has). Inside the conformance suite, a test that needs what a backend
// may lack asks tests/helpers/backends.ts, never the backend's name.
// tests/unit/ needs no database and runs once. tests/README.md says how a
// backend joins.
const logLevel = process.env.SUPERDUPER_LOG_LEVEL ?? 'silent';

function backendProject(name: 'postgres' | 'pglite') {
  return {
    extends: true,
    test: {
      name,
      include: ['tests/conformance/**/*.test.ts', `tests/backends/${name}/**/*.test.ts`],
      env: { SUPERDUPER_LOG_LEVEL: logLevel, SUPERDUPER_TEST_BACKEND: name },
    },
  } as const;
}

export default defineConfig({
  test: {
    globalSetup: ['tests/helpers/global-setup.ts'],
    // Each file gets its own database; files run in parallel on the two cores.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      // The PostgreSQL 15 server (scripts/pg.sh), and servers of the fault tests' own.
      backendProject('postgres'),
      // The embedded PGlite, served on a wire endpoint: same SQL layer, same results.
      backendProject('pglite'),
      // MongoDB, on the test emulation of a replica set (tests/helpers/mongodb-emulator/),
      // or on a real one when MONGODB_URI is set. Most of the conformance suite
      // drives its databases through SQL; MongoDB runs the part that reads and
      // writes data through tests/helpers/stores.ts (tests/conformance/any-store/).
      {
        extends: true,
        test: {
          name: 'mongodb',
          include: ['tests/conformance/any-store/**/*.test.ts', 'tests/backends/mongodb/**/*.test.ts'],
          env: { SUPERDUPER_LOG_LEVEL: logLevel, SUPERDUPER_TEST_BACKEND: 'mongodb' },
        },
      },
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], env: { SUPERDUPER_LOG_LEVEL: logLevel } } },
    ],
  },
});
