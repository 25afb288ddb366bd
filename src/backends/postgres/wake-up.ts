import type { WakeUp } from '../backend.js';
import type { SqlDriver } from './sql-driver.js';
import { NOTIFY } from '../../generated/constants.js';

const WORK = NOTIFY.work;

/**
 * Waking sidecars on PostgreSQL (docs/architecture.md, "Waking sidecars"): one
 * NOTIFY channel, 'superduper', whose payloads are
 * - '<listener id>': that listener has changes (a trigger, when a sidecar sleeps);
 * - 'request:<id>': a model call from SQL (sql/functions, superduper._request);
 * - 'embed:<json>': an embedding request carried whole ({id, model, hash, input});
 * - anything else: look at everything (the embedded endpoint's 'changed').
 * The sleep mark is advisory lock (LOCKS.namespace, LOCKS.sleep) held exclusively by a sleeping
 * sidecar (superduper._sleep_lock): writers that fail to take it shared notify.
 */
export function postgresWakeUp(db: SqlDriver): WakeUp {
  let unlocking: Promise<void> = Promise.resolve();
  return {
    subscribe(handlers) {
      return db.listen(
        WORK.channel,
        (payload) => {
          if (payload.startsWith(WORK.embed_prefix)) {
            let carried: { id?: unknown; model?: unknown; hash?: unknown; input?: unknown };
            try {
              carried = JSON.parse(payload.slice(WORK.embed_prefix.length)) as typeof carried;
            } catch {
              return handlers.request(undefined);
            }
            const id = String(carried.id);
            // Not a request id: look for pending requests instead.
            if (!/^\d+$/.test(id)) return handlers.request(undefined);
            if (typeof carried.model !== 'string' || typeof carried.hash !== 'string') return handlers.request(id);
            return handlers.carried({ id, model: carried.model, hash: carried.hash, input: carried.input });
          }
          if (payload.startsWith(WORK.request_prefix)) {
            const id = payload.slice(WORK.request_prefix.length);
            return handlers.request(/^\d+$/.test(id) ? id : undefined);
          }
          const id = Number(payload);
          handlers.changed(Number.isInteger(id) && payload !== '' ? id : undefined);
        },
        () => handlers.reconnected(),
        () => handlers.lost(),
      );
    },

    async asleep(sidecarId, quickMs, fn) {
      // The last sleep's unlock first: the lock is a session's, and this one
      // may come on another connection.
      await unlocking;
      // Tiny statements: a connection that does not answer them soon is stalled.
      const quick = { timeoutMs: quickMs };
      const connection = await db.acquire();
      let locked;
      try {
        locked = await connection.query<{ locked: boolean }>('SELECT superduper._sleep_lock($1) AS locked', [sidecarId], quick);
      } catch (error) {
        connection.release(true);
        throw error;
      }
      const marked = locked.rows[0]?.locked ?? false;
      try {
        return await fn(marked);
      } finally {
        // Woken: the work begins now, and the unlock goes on beside it rather
        // than before it (a round trip off every wake-up's latency). Until it
        // lands, committing writers still notify: harmless wake-ups.
        unlocking = connection.query('SELECT superduper._sleep_unlock($1, $2)', [sidecarId, marked], quick).then(
          () => connection.release(),
          // A connection that failed here is dropped, and its session's lock with it.
          () => connection.release(true),
        );
      }
    },
  };
}
