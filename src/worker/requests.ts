import { backoffMs } from '../backends/connection-health.js';
import type { Connection, Database } from '../backends/postgres/sql-driver.js';
import { classifyDatabaseError, describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import type { OutputSpec } from '../models/types.js';
import { answerModelCalls, type CallAnswer } from './model-calls.js';

interface Request {
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
 * Answers superduper.embed() / predict() calls made from SQL sessions (see
 * sql/functions/080_model_calls.sql). A caller is waiting on each request, so
 * they are served as soon as they arrive, apart from the listeners' batches.
 */
export class RequestServer {
  #running: Promise<void> | undefined;
  #again = false;
  #dedicated: Connection | undefined;
  readonly #named: string[] = [];
  readonly #carried: Request[] = [];
  /** The models of requests this sidecar has read, by name: what a carried request needs. */
  readonly #known = new Map<string, Request>();
  #closed = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly models: ModelCache,
    private readonly workerId: string,
    private readonly logger: Logger,
    private readonly reconnectMaxMs = 1000,
  ) {}

  /** A request a NOTIFY named: claimed by its primary key first. */
  take(id: string): void {
    this.#named.push(id);
    this.wake();
  }

  /**
   * An embedding request whose NOTIFY carried its model version and input (see
   * superduper._request). Embeddings are read, not claimed, so when this sidecar
   * has read that version of the model before, it computes at once, saving the
   * read; otherwise it takes the request by its id.
   */
  takeCarried(payload: string): void {
    let carried: { id?: unknown; model?: unknown; hash?: unknown; input?: unknown };
    try {
      carried = JSON.parse(payload) as typeof carried;
    } catch {
      this.wake();
      return;
    }
    const id = String(carried.id);
    if (!/^\d+$/.test(id)) {
      this.wake(); // not a request id: look for pending requests instead
      return;
    }
    const known = typeof carried.model === 'string' ? this.#known.get(carried.model) : undefined;
    if (!known || known.model_hash !== carried.hash) {
      this.take(id);
      return;
    }
    this.#carried.push({ ...known, id, kind: 'embed', input: carried.input });
    this.wake();
  }

  /** Serves pending requests; a call while serving makes it look once more. */
  wake(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#serve().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Requests go through a connection of their own, with synchronous_commit off:
   * a request lives for milliseconds and is worthless after a crash (the caller's
   * statement dies too), so its claim and answer need not wait for a WAL flush
   * (measured: ~1 ms of a 5 ms round trip).
   */
  async #connection(): Promise<Connection> {
    if (!this.#dedicated) {
      const connection = await this.db.acquire();
      try {
        // Named, so that an operator (or a test) can tell it in pg_stat_activity.
        await connection.query("SET synchronous_commit = off; SET application_name = 'superduper sidecar requests'");
      } catch (error) {
        connection.release(true);
        throw error;
      }
      this.#dedicated = connection;
    }
    return this.#dedicated;
  }

  /** Gives the dedicated connection back (on stop); serves nothing after. */
  release(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#dedicated?.release(true);
    this.#dedicated = undefined;
  }

  async #serve(): Promise<void> {
    try {
      const db = await this.#connection();
      for (;;) {
        // Embeddings whose NOTIFY carried everything: nothing to read first.
        const carried = this.#carried.splice(0);
        if (carried.length > 0) {
          await this.#answerAll(db, carried, performance.now());
          continue;
        }
        const named = this.#named.shift() ?? null;
        const started = performance.now();
        const claimed = await db.query<Request>('SELECT * FROM superduper._claim_requests($1, $2, $3, $4)', [
          this.workerId,
          this.models.functions.names(),
          64,
          named,
        ]);
        this.#failures = 0;
        if (claimed.rows.length === 0 && named !== null) continue; // taken by another sidecar, or not ours
        if (claimed.rows.length === 0) return;
        for (const request of claimed.rows) this.#known.set(request.model, request);
        await this.#answerAll(db, claimed.rows, started);
      }
    } catch (error) {
      // The connection may be broken: take a new one, and look again soon, since
      // callers are waiting (a request whose NOTIFY came meanwhile is claimed as
      // the oldest pending one).
      this.#dedicated?.release(true);
      this.#dedicated = undefined;
      if (classifyDatabaseError(error) !== 'connection') {
        this.logger.error({ error: describeError(error) }, 'could not serve model calls from SQL');
      }
      if (!this.#closed) {
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.wake(), backoffMs(++this.#failures, 100, this.reconnectMaxMs));
        this.#retry.unref();
      }
    }
  }

  async #answerAll(db: Connection, requests: Request[], started: number): Promise<void> {
    const readAt = performance.now();
    const byModel = new Map<string, Request[]>();
    for (const request of requests) byModel.set(request.model, [...(byModel.get(request.model) ?? []), request]);
    const ids: string[] = [];
    const results: Array<string | null> = [];
    const errors: Array<string | null> = [];
    await Promise.all(
      [...byModel.values()].map(async (group) => {
        const answers = await this.#answer(group);
        group.forEach((request, i) => {
          ids.push(request.id);
          results.push(answers[i]!.ok ? JSON.stringify(answers[i]!.value) : null);
          errors.push(answers[i]!.ok ? null : answers[i]!.error);
        });
      }),
    );
    const computedAt = performance.now();
    await db.query('SELECT superduper._answer_requests($1::bigint[], $2::jsonb[], $3::text[])', [ids, results, errors]);
    this.logger.debug(
      { requests: ids.length, readMs: readAt - started, computeMs: computedAt - readAt, answerMs: performance.now() - computedAt },
      'answered model calls from SQL',
    );
  }

  #answer(requests: Request[]): Promise<CallAnswer[]> {
    const first = requests[0]!;
    const model = {
      name: first.model,
      runtime: first.runtime,
      output: first.output,
      config: first.model_config,
      artifact: first.model_artifact,
      spec_hash: first.model_hash,
    };
    return answerModelCalls(this.models, model, requests.map((r) => r.input));
  }
}
