/**
 * The backends the tests run on, and what the test infrastructure can do with
 * each. A conformance test (tests/conformance/) that needs something a backend
 * may lack asks for it by name here, never for the backend itself:
 *
 *   const backend = testBackendCapabilities();
 *   it.runIf(backend.concurrentSessions)('...', async () => { ... });
 *
 * These are facts about the test setup (how a test database is reached, what a
 * test may do to it), not the product's own backend capabilities in src/; the
 * two may differ. A new backend adds its name, an entry below and a project in
 * vitest.config.ts (see tests/README.md).
 */
export const TEST_BACKENDS = ['postgres', 'pglite'] as const;
export type TestBackendName = (typeof TEST_BACKENDS)[number];

export interface TestBackendCapabilities {
  /**
   * Several sessions run at once: one client's open transaction block does not
   * hold up the others. (The embedded database has one session, taken in
   * turns: an open block holds everyone else's turn, the test's included.)
   * Used by: chaining-and-remove (a remove refused at once while a user's
   * transaction holds the table).
   */
  concurrentSessions: boolean;
  /**
   * A sidecar with nothing to do sleeps (superduper._workers.sleeping) until a
   * NOTIFY or its reconciliation scan wakes it, so a test can wait for it to
   * sleep and then write. (The embedded database's wire server wakes the
   * sidecar after every write, and the sidecar looks every 200 ms: it never
   * reports sleeping.) Used by: sidecars (waking).
   */
  sidecarSleepsOnNotify: boolean;
  /**
   * A test can end one of the database's sessions from SQL
   * (pg_terminate_backend), to cut a sidecar's connection. (The embedded
   * database's pg_terminate_backend does nothing.) Used by: sidecars (the
   * LISTEN connection cut).
   */
  terminateSessions: boolean;
  /**
   * Model calls from SQL (superduper.embed, like, predict) go through dblink to
   * a sidecar and wait for it, so with no sidecar running they time out with
   * "no sidecar answered". (Without dblink the process hosting the database
   * answers them, and with none it fails at once, saying so.) Used by:
   * vector-search (the cached query embedding).
   */
  modelCallsThroughDblink: boolean;
  /**
   * A running statement can be interrupted by a cancel request. (PGlite runs a
   * statement on the host's thread to its end; a cancel request stops only a
   * statement still waiting for the session.) Used by: clients (psycopg2's
   * cancel()).
   */
  interruptibleStatements: boolean;
  /**
   * The endpoint takes replication connections (a server does; the embedded
   * endpoint refuses them, saying why). Used by: clients.
   */
  replicationConnections: boolean;
  /** The search_path a new session starts with (PGlite's is `public`). Used by: clients (settings). */
  defaultSearchPath: string;
}

const capabilities: Record<TestBackendName, TestBackendCapabilities> = {
  postgres: {
    concurrentSessions: true,
    sidecarSleepsOnNotify: true,
    terminateSessions: true,
    modelCallsThroughDblink: true,
    interruptibleStatements: true,
    replicationConnections: true,
    defaultSearchPath: '"$user", public',
  },
  pglite: {
    concurrentSessions: false,
    sidecarSleepsOnNotify: false,
    terminateSessions: false,
    modelCallsThroughDblink: false,
    interruptibleStatements: false,
    replicationConnections: false,
    defaultSearchPath: 'public',
  },
};

/** Which backend this test process runs on: its vitest project sets SUPERDUPER_TEST_BACKEND (default postgres). */
export function testBackendName(): TestBackendName {
  const name = process.env.SUPERDUPER_TEST_BACKEND ?? 'postgres';
  if (!(TEST_BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`SUPERDUPER_TEST_BACKEND=${name} is not a test backend (${TEST_BACKENDS.join(', ')})`);
  }
  return name as TestBackendName;
}

/** What the backend this test process runs on can do (see the comments of TestBackendCapabilities). */
export function testBackendCapabilities(): TestBackendCapabilities {
  return capabilities[testBackendName()];
}
