import type { LayerVersion } from '../../layer-version.js';
import { LOCKS } from '../../generated/constants.js';
import { codeVersion } from '../../generated/sql.js';
import type { ListenerInfo } from '../../sidecar/listener-info.js';
import type { SidecarLiveness } from '../backend.js';
import type { SidecarRow } from '../types.js';
import { decide, type ScheduleRow } from '../../schedules/due.js';
import type { SqlDriver } from './sql-driver.js';
import { runTraining } from './training.js';

/**
 * Drains delete from the change log, which has no index: its dead rows are read
 * by every drain until a VACUUM removes them, and autovacuum comes by once a
 * minute. Measured: under a steady write load the dead rows made each drain slow
 * enough to cut the database's throughput tenfold. So a sidecar that worked in
 * the last second vacuums the log (skipped if another sidecar is at it).
 */
const VACUUM_LOG = 'VACUUM (SKIP_LOCKED) superduper._changes';

/** A schedule's firing is another sidecar's to take over once this long passes without it finishing. */
const SCHEDULE_LEASE_SECONDS = 300;

/** lock_not_available: a statement's lock_timeout ran out. */
const LOCK_TIMEOUT = '55P03';

/** Sidecars' registration, heartbeats and listeners (sql/functions/050_sidecars.sql, 055_sidecar_work.sql). */
export function postgresSidecars(db: SqlDriver): SidecarLiveness {
  return {
    async register(sidecar) {
      const result = await db.query<{ layer: LayerVersion }>(
        'SELECT superduper._worker_register($1, $2, $3, $4, make_interval(secs => $5), $6) AS layer',
        [sidecar.id, sidecar.host, sidecar.pid, sidecar.functions, sidecar.heartbeatMs / 1000, codeVersion],
      );
      return result.rows[0]!.layer;
    },

    async heartbeat(sidecarId, beat) {
      const result = await db.query<{ beat: LayerVersion & { released: number } }>(
        'SELECT superduper._worker_heartbeat($1, make_interval(secs => $2), $3, $4) AS beat',
        [sidecarId, beat.deadAfterMs / 1000, beat.state, beat.outage ? JSON.stringify(beat.outage) : null],
        { timeoutMs: beat.timeoutMs },
      );
      const { released, ...layer } = result.rows[0]!.beat;
      return { layer, released };
    },

    async stop(sidecarId, timeoutMs) {
      await db.query('SELECT superduper._worker_stop($1)', [sidecarId], { timeoutMs });
    },

    async listeners(functions) {
      const result = await db.query<ListenerInfo>('SELECT * FROM superduper._worker_listeners($1)', [functions]);
      return result.rows;
    },

    async promoteReady() {
      const result = await db.query<{ promoted: number }>('SELECT superduper._promote_ready() AS promoted');
      return result.rows[0]?.promoted ?? 0;
    },

    async buildVectorIndexes() {
      const builds = await db.query<{ id: number }>('SELECT id FROM superduper._vector_index_builds()');
      let swapped = 0;
      for (const { id } of builds.rows) {
        // On a connection of its own, holding the build's lock for the session:
        // CREATE INDEX CONCURRENTLY runs outside any transaction, for as long
        // as the graph takes (no deadline), and another sidecar skips it.
        swapped += await db.withConnection(async (connection) => {
          const lock = await connection.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [LOCKS.build_namespace, id]);
          if (!lock.rows[0]?.locked) return 0;
          try {
            const steps = await connection.query<{ statement: string }>('SELECT superduper._vector_index_build_steps($1) AS statement', [id], {
              timeoutMs: 0,
            });
            for (const { statement } of steps.rows) await connection.query(statement, [], { timeoutMs: 0 });
            const swap = await connection.query<{ swapped: boolean }>('SELECT superduper._vector_index_swap($1) AS swapped', [id]);
            return swap.rows[0]?.swapped ? 1 : 0;
          } finally {
            await connection.query('SELECT pg_advisory_unlock($1, $2)', [LOCKS.build_namespace, id]);
          }
        });
      }
      // What versions swapped out (here or by another sidecar) left behind:
      // dropped concurrently, waiting for the searches that still read them.
      const leftovers = await db.query<{ statement: string }>('SELECT superduper._vector_index_leftovers() AS statement');
      for (const { statement } of leftovers.rows) {
        await db.query(statement, [], { timeoutMs: 0 }).catch((error: unknown) => {
          // A word column's drop timed out waiting for a long search: next time.
          if ((error as { code?: string }).code !== LOCK_TIMEOUT) throw error;
        });
      }
      return swapped;
    },

    async runSchedules(sidecarId) {
      const schedules = await db.query<ScheduleRow>('SELECT * FROM superduper._schedules_due()');
      let fired = 0;
      for (const schedule of schedules.rows) {
        const decision = decide(schedule);
        if (decision.kind === 'next') {
          await db.query('SELECT superduper._schedule_next($1, $2, $3)', [schedule.name, decision.next, decision.error]);
        } else if (decision.kind === 'fire') {
          const claimed = await db.query<{ claimed: boolean }>(
            'SELECT superduper._schedule_claim($1, $2, $3, $4, make_interval(secs => $5), $6, $7) AS claimed',
            [schedule.name, decision.due, decision.next, sidecarId, SCHEDULE_LEASE_SECONDS, decision.skip, decision.note === null ? null : JSON.stringify(decision.note)],
          );
          if (!claimed.rows[0]?.claimed) continue;
          await db.query('SELECT superduper._schedule_run($1, $2, $3)', [schedule.name, decision.due, sidecarId], { timeoutMs: 0 });
          fired++;
        }
      }
      return fired;
    },

    async runTraining(options) {
      await db.query('SELECT superduper._training_changed()');
      return runTraining(db, options);
    },

    async refreshSearchStatistics() {
      await db.query('SELECT superduper._text_stats_refresh()');
    },

    async maintain() {
      // A warning, not an error, if this role does not own the table: skipped then.
      await db.query(VACUUM_LOG);
    },

    async list() {
      const result = await db.query<SidecarRow>(
        `SELECT id, state, extract(epoch FROM now() - seen_at)::float8 AS seen, outages,
                extract(epoch FROM last_outage)::float8 AS last, last_outage_reason AS reason
         FROM superduper.workers ORDER BY started_at`,
      );
      return result.rows;
    },
  };
}
