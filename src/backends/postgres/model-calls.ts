import { SuperduperError } from '../../errors.js';
import type { CallAnswerer, ModelCallRequest, ModelCalls } from '../backend.js';
import type { OutputSpec } from '../../models/types.js';
import { modelRecord } from './registry.js';
import type { Queryable, SqlDriver } from './sql-driver.js';

/** A model call raised by SQL that the process hosting the database answers (the embedded PGlite). */
export interface HostedModelCall {
  model: string;
  kind: 'embed' | 'predict';
  input: unknown;
}

/** How a driver that hosts its database lets a process answer its model calls; returns the function that stops it. */
export type HostModelCalls = (host: (call: HostedModelCall, session: Queryable) => Promise<void>) => () => void;

interface RequestRow {
  id: string;
  model: string;
  kind: 'embed' | 'predict';
  input: unknown;
  model_hash: string;
  runtime: string;
  model_config: Record<string, unknown>;
  model_artifact: string | null;
  output: OutputSpec;
}

/**
 * Model calls from SQL (sql/functions: superduper.embed, predict, like): on a
 * server, requests rows that sidecars claim and answer; on a database hosted in
 * this process (hostCalls), answers stored for the statement's next run.
 */
export function postgresModelCalls(db: SqlDriver, hostCalls: HostModelCalls | undefined): ModelCalls {
  return {
    async open() {
      // Requests go through a connection of their own, with synchronous_commit
      // off: a request lives for milliseconds and is worthless after a crash (the
      // caller's statement dies too), so its claim and answer need not wait for a
      // WAL flush (measured: ~1 ms of a 5 ms round trip).
      const connection = await db.acquire();
      try {
        // Named, so that an operator (or a test) can tell it in pg_stat_activity.
        await connection.query("SET synchronous_commit = off; SET application_name = 'superduper sidecar requests'");
      } catch (error) {
        connection.release(true);
        throw error;
      }
      return {
        async claim(sidecarId, functions, limit, named) {
          const claimed = await connection.query<RequestRow>('SELECT * FROM superduper._claim_requests($1, $2, $3, $4)', [
            sidecarId,
            functions,
            limit,
            named,
          ]);
          return claimed.rows.map(
            (row): ModelCallRequest => ({
              id: row.id,
              model: row.model,
              kind: row.kind,
              input: row.input,
              record: { name: row.model, runtime: row.runtime, output: row.output, config: row.model_config, artifact: row.model_artifact, spec_hash: row.model_hash },
            }),
          );
        },
        async answer(ids, results, errors) {
          await connection.query('SELECT superduper._answer_requests($1::bigint[], $2::jsonb[], $3::text[])', [ids, results, errors]);
        },
        close(broken = true) {
          connection.release(broken);
        },
      };
    },

    host(answer: CallAnswerer) {
      if (!hostCalls) {
        throw new SuperduperError('this database answers model calls from SQL through its sidecars, not through a host process');
      }
      return hostCalls(async (call, session) => {
        const model = await modelRecord(session, call.model);
        if (!model) return; // removed meanwhile: the statement's next run says so
        const [result] = await answer(model, [call.input]);
        await session.query('SELECT superduper._store_answer($1, $2, $3::jsonb, $4::jsonb, $5)', [
          call.model,
          call.kind,
          JSON.stringify(call.input),
          result?.ok ? JSON.stringify(result.value) : null,
          result?.ok ? null : (result?.error ?? 'no answer'),
        ]);
      });
    },

    async predict(model, input) {
      const result = await db.query<{ output: unknown }>('SELECT superduper.predict($1, $2::jsonb) AS output', [model, JSON.stringify(input)]);
      return result.rows[0]?.output;
    },
  };
}
