import { createHash } from 'node:crypto';
import { SuperduperError } from '../../errors.js';
import type { ModelRecord } from '../../models/types.js';
import { withStoredSpecs, type ModelUpload, type Registry } from '../backend.js';
import type { ApplyResult, FailureRow, ListenerStatus, PlanResult } from '../types.js';
import type { Queryable, SqlDriver } from './sql-driver.js';

/** The component registry through superduper.apply/remove and the status and failures views. */
export function postgresRegistry(db: SqlDriver): Registry {
  return {
    async apply(specs, uploads) {
      return db.transaction(async (tx) => {
        const stored = new Map<Record<string, unknown>, Record<string, unknown>>();
        for (const upload of uploads) stored.set(upload.spec, await storeModelFiles(tx, upload));
        const sent = withStoredSpecs(specs, stored);
        const result = await tx.query<{ result: ApplyResult[] }>('SELECT superduper.apply($1::jsonb) AS result', [JSON.stringify(sent)]);
        return result.rows[0]?.result ?? [];
      });
    },

    async plan(specs, uploads) {
      // The files are named as for the apply (the apply checks they are
      // there), in a transaction rolled back like the apply the plan runs.
      const rolledBack = new PlanRolledBack();
      try {
        await db.transaction(async (tx) => {
          const stored = new Map<Record<string, unknown>, Record<string, unknown>>();
          for (const upload of uploads) stored.set(upload.spec, await storeModelFiles(tx, upload, true));
          const result = await tx.query<{ plan: PlanResult[] }>('SELECT superduper.plan($1::jsonb) AS plan', [JSON.stringify(withStoredSpecs(specs, stored))]);
          rolledBack.plan = result.rows[0]?.plan ?? [];
          throw rolledBack;
        });
      } catch (error) {
        if (error !== rolledBack) throw error;
      }
      return rolledBack.plan;
    },

    async remove(name, options) {
      const result = await db.query<{ result: ApplyResult[] }>('SELECT superduper.remove($1, $2, $3) AS result', [
        name,
        options.keepOutputs,
        options.cascade,
      ]);
      return result.rows[0]?.result ?? [];
    },

    async status(options) {
      const result = await db.query<ListenerStatus>(
        `SELECT listener, version, state, model, source, outputs, pending::int, in_flight::int, failed::int,
                done::int, extract(epoch FROM lag)::float8 AS lag_seconds, backfill_total::int,
                backfill_remaining::int, note, withdrawn::int, computing::int
         FROM superduper._status($1)`,
        [options.countDone],
      );
      return result.rows;
    },

    async failures(listener) {
      const result = await db.query<FailureRow>(
        `SELECT listener, version, ARRAY(SELECT jsonb_array_elements_text(primary_key)) AS primary_key,
                attempts, error, failed_at, withdrawn
         FROM superduper.failures WHERE $1::text IS NULL OR listener = $1 ORDER BY listener, failed_at`,
        [listener ?? null],
      );
      return result.rows;
    },

    async retry(listener) {
      const result = await db.query<{ count: string }>('SELECT superduper.retry($1) AS count', [listener]);
      return Number(result.rows[0]?.count ?? 0);
    },

    async outputsLocation(listener) {
      const result = await db.query<{ table: string }>('SELECT superduper.outputs($1)::text AS table', [listener]);
      return result.rows[0]!.table;
    },

    async artifact(sha256) {
      const result = await db.query<{ bytes: Buffer }>('SELECT bytes FROM superduper._artifacts WHERE sha256 = $1', [sha256]);
      const row = result.rows[0];
      if (!row) throw new SuperduperError(`artifact ${sha256} is not stored in this database`);
      return new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
    },

    model: (name) => modelRecord(db, name),

    async application(name) {
      const result = await db.query<{ spec: Record<string, unknown>; template: Record<string, unknown> | null; spec_versions: Record<string, number> }>(
        `SELECT a.spec, a.template, (SELECT jsonb_object_agg(t.type, t.spec_version) FROM superduper._component_types AS t) AS spec_versions
         FROM superduper._applications AS a WHERE a.name = $1`,
        [name],
      );
      const row = result.rows[0];
      return row ? { spec: row.spec, template: row.template, specVersions: row.spec_versions } : undefined;
    },
  };
}

/** A model as registered (superduper._models), or undefined. */
export async function modelRecord(db: Queryable, name: string): Promise<ModelRecord | undefined> {
  const found = await db.query<ModelRecord>('SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = $1', [name]);
  return found.rows[0];
}

/**
 * A model's spec with its files' SHA-256 filled in, the files stored by
 * content hash (one already there is not sent again). For a plan (rolled
 * back), a file not stored yet gets an empty row under its hash instead: the
 * apply the plan runs checks that the file is there, never its bytes, so a
 * model file of gigabytes is not sent for a plan and then again for the apply.
 */
async function storeModelFiles(tx: Queryable, model: ModelUpload, forPlan = false): Promise<Record<string, unknown>> {
  const put = async (bytes: Uint8Array) => {
    const sha = createHash('sha256').update(bytes).digest('hex');
    const stored = await tx.query('SELECT 1 FROM superduper._artifacts WHERE sha256 = $1', [sha]);
    if (stored.rows.length > 0) return sha;
    if (forPlan) {
      await tx.query(`INSERT INTO superduper._artifacts (sha256, bytes) VALUES ($1, ''::bytea)`, [sha]);
      return sha;
    }
    const result = await tx.query<{ sha: string }>('SELECT superduper.put_artifact($1) AS sha', [Buffer.from(bytes)]);
    return result.rows[0]!.sha;
  };
  const spec = { ...model.spec };
  if (model.artifact) spec.artifact = await put(model.artifact);
  if (model.files) {
    const files: Record<string, string> = {};
    for (const [path, bytes] of Object.entries(model.files)) files[path] = await put(bytes);
    spec.config = { ...(spec.config as Record<string, unknown>), files };
  }
  return spec;
}

/** Thrown out of the plan's transaction to roll it back, carrying the plan. */
class PlanRolledBack extends Error {
  plan: PlanResult[] = [];
  constructor() {
    super('plan rolled back');
  }
}
