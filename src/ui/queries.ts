import pg from 'pg';
import type { Queryable } from '../backends/postgres/sql-driver.js';
import { SuperduperError } from '../errors.js';

/**
 * What the status page reads, through the same public SQL interface a person
 * in psql has (the superduper.* views and functions), with the rights of the
 * role it connects as: a role that may not read a source table gets no rows
 * of it from a search, and one that may not retry is told so.
 */
export interface Overview {
  listeners: Array<Record<string, unknown>>;
  workers: Array<Record<string, unknown>>;
  vectorIndexes: Array<{ name: string; listener: string; measure: string; state: string }>;
  applications: Array<{ name: string; version: number; components: Array<{ type: string; name: string; present: boolean }> }>;
  /** Edges of the lineage: table → listener, listener → listener (chained), listener → vector index. */
  lineage: Array<{ from: string; to: string; kind: string }>;
  mayRetry: boolean;
  at: string;
}

export async function overview(db: Queryable): Promise<Overview> {
  const listeners = (
    await db.query(
      `SELECT s.listener, s.version, s.state, s.model, s.source, s.outputs, s.pending::int, s.in_flight::int, s.computing::int,
              s.failed::int, s.done::int, extract(epoch FROM s.lag)::float8 AS lag_seconds, s.backfill_total::int, s.note
       FROM superduper.status s ORDER BY s.listener, s.version`,
    )
  ).rows;
  const workers = (await db.query(`SELECT id, hostname, state, state_since, seen_at, outages FROM superduper.workers ORDER BY started_at`)).rows;
  const vectorIndexes = (await db.query<Overview['vectorIndexes'][number]>(`SELECT name, listener, measure, state FROM superduper.vector_indexes ORDER BY name, version`)).rows;
  const applications = (await db.query<Overview['applications'][number]>(`SELECT name, version, components FROM superduper.applications ORDER BY name`)).rows;
  const outputsOf = new Map(listeners.map((l) => [String(l.outputs), String(l.listener)]));
  const lineage: Overview['lineage'] = [];
  const seen = new Set<string>();
  for (const l of listeners) {
    const key = `${String(l.source)}>${String(l.listener)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const upstream = outputsOf.get(String(l.source));
    lineage.push(upstream ? { from: upstream, to: String(l.listener), kind: 'listener' } : { from: String(l.source), to: String(l.listener), kind: 'table' });
  }
  for (const v of vectorIndexes) if (v.state === 'current') lineage.push({ from: v.listener, to: v.name, kind: 'vector_index' });
  const rights = await db.query<{ may: boolean }>(
    `SELECT has_function_privilege('superduper.retry(text, jsonb[])', 'EXECUTE')
            AND has_table_privilege('superduper._failures', 'DELETE') AND has_table_privilege('superduper._queue', 'INSERT') AS may`,
  );
  return { listeners, workers, vectorIndexes, applications, lineage, mayRetry: rights.rows[0]?.may ?? false, at: new Date().toISOString() };
}

export async function failures(db: Queryable): Promise<Array<Record<string, unknown>>> {
  return (
    await db.query(
      `SELECT listener, version, primary_key, attempts, error, failed_at, withdrawn
       FROM superduper.failures ORDER BY listener, failed_at DESC LIMIT 200`,
    )
  ).rows;
}

export async function retry(db: Queryable, listener: string): Promise<number> {
  const result = await db.query<{ n: string }>('SELECT superduper.retry($1) AS n', [listener]);
  return Number(result.rows[0]?.n ?? 0);
}

/** A search through superduper.like, each hit with its source row (read with the role's rights). */
export async function search(db: Queryable, index: string, query: string, k: number): Promise<Array<{ key: string[]; score: number; row: unknown }>> {
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new SuperduperError(`k must be a whole number from 1 to 100, not ${k}`);
  const hits = (await db.query<{ key: string[]; score: number }>('SELECT key, score FROM superduper.like($1, $2, $3)', [index, query, k])).rows;
  const [source] = (
    await db.query<{ source: string; primary_key: string[] }>(
      `SELECT l.source, l.primary_key FROM superduper.vector_indexes v JOIN superduper.listeners l ON l.name = v.listener AND l.state = 'current'
       WHERE v.name = $1 AND v.state = 'current'`,
      [index],
    )
  ).rows;
  if (!source || hits.length === 0) return hits.map((hit) => ({ ...hit, row: null }));
  // One query for every hit's row: source is qualified and quoted by the
  // database (superduper._qualify); the key columns are quoted here. A chunk's
  // key ends with its position in its row's list: the row is the first columns.
  const columns = source.primary_key.map((column) => `t.${pg.escapeIdentifier(column)}::text`);
  const keys = source.primary_key.map((_, i) => hits.map((hit) => hit.key[i]!));
  const found = await db.query<{ key: string[]; row: unknown }>(
    `SELECT ARRAY[${columns.join(', ')}] AS key, to_jsonb(t) AS row FROM ${source.source} AS t
     WHERE (${columns.join(', ')}) IN (SELECT * FROM unnest(${keys.map((_, i) => `$${i + 1}::text[]`).join(', ')}))`,
    keys,
  );
  const rows = new Map(found.rows.map((r) => [JSON.stringify(r.key), r.row]));
  return hits.map((hit) => ({ ...hit, row: rows.get(JSON.stringify(hit.key.slice(0, source.primary_key.length))) ?? null }));
}
