import { SuperduperError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Backend } from './backend.js';
import { connectPostgresBackend, PostgresBackend, SERVER_CAPABILITIES } from './postgres/backend.js';
import type { SqlDriver } from './postgres/sql-driver.js';

/** A backend per connection-string scheme; a new backend adds its line. */
const SCHEMES: ReadonlyArray<{ prefix: string; open(target: string, options: OpenOptions): Promise<Backend> }> = [
  {
    prefix: 'pglite:',
    // Imported only here: PostgreSQL users never load the WebAssembly build.
    open: async (target) => (await import('./pglite/backend.js')).openEmbeddedBackend(target.slice('pglite:'.length)),
  },
  // Imported only here: PostgreSQL users never load the MongoDB driver.
  { prefix: 'mongodb:', open: async (target, options) => (await import('./mongodb/backend.js')).connectMongoBackend(target, options) },
  { prefix: 'mongodb+srv:', open: async (target, options) => (await import('./mongodb/backend.js')).connectMongoBackend(target, options) },
];

export interface OpenOptions {
  logger: Logger;
  /** Pool size for a server (default 10). */
  maxConnections?: number;
}

/**
 * The backend for a connection string ("postgres://…"; "pglite:<folder>" or
 * "pglite:memory" for the embedded database), or for a driver a caller opened
 * (an embedded database, or any SqlDriver: taken as a PostgreSQL server's).
 */
export async function openBackend(target: string | SqlDriver | Backend, options: OpenOptions): Promise<{ backend: Backend; owned: boolean }> {
  if (typeof target === 'string') {
    // Without a scheme the PostgreSQL driver reads "localhost:54329/db" as
    // something else entirely (it connected to port 5432): refused, unless it
    // is libpq's "host=… dbname=…" form.
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target) && !target.startsWith('pglite:') && !target.includes('=')) {
      throw new SuperduperError(`"${target}" is not a connection string`, {
        hint: `Give it a scheme: postgres://${target}, mongodb://${target}, or pglite:<folder> for the embedded database.`,
      });
    }
    const scheme = SCHEMES.find((s) => target.startsWith(s.prefix));
    const backend = scheme ? await scheme.open(target, options) : await connectPostgresBackend(target, options);
    return { backend, owned: true };
  }
  if (isBackend(target)) return { backend: target, owned: false };
  const backend = target.backend?.() ?? new PostgresBackend(target, { name: 'postgres', capabilities: SERVER_CAPABILITIES, ownsDriver: false });
  return { backend, owned: false };
}

function isBackend(target: SqlDriver | Backend): target is Backend {
  return 'registry' in target && 'queue' in target && 'capabilities' in target;
}
