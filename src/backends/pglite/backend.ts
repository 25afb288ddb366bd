import type { Capabilities } from '../backend.js';
import { PostgresBackend } from '../postgres/backend.js';
import type { EmbeddedDatabase } from './driver.js';

/**
 * PGlite in this process: one session for everyone (no sleep lock to hold, no
 * cross-session NOTIFY: a sidecar looks every 200 ms, or when the wire server
 * sees a write), and no dblink: this process answers the model calls its SQL
 * makes (SDM01, see model-call-rerun.ts).
 */
export const EMBEDDED_CAPABILITIES: Capabilities = {
  sharedSession: true,
  crossSessionNotify: false,
  modelCallsFromQueries: 'host',
  defaultReconcileMs: 200,
};

/** The PostgreSQL backend on the embedded database's driver. */
export function embeddedBackend(db: EmbeddedDatabase, options: { ownsDriver: boolean }): PostgresBackend {
  return new PostgresBackend(db, {
    name: 'embedded',
    capabilities: EMBEDDED_CAPABILITIES,
    ownsDriver: options.ownsDriver,
    hostModelCalls: (host) => {
      db.addModelCallHost(host);
      return () => db.removeModelCallHost(host);
    },
  });
}

/** "pglite:<folder>" keeps its files in that folder, "pglite:memory" keeps nothing. */
export async function openEmbeddedBackend(where: string): Promise<PostgresBackend> {
  const { EmbeddedDatabase } = await import('./driver.js');
  const db = await EmbeddedDatabase.open(where === 'memory' ? {} : { dataDir: where });
  return embeddedBackend(db, { ownsDriver: true });
}
