import type { Database } from '../backends/database.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkOutput } from '../models/output-check.js';
import type { ModelCache } from '../models/registry.js';
import type { OutputSpec } from '../models/types.js';

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

  constructor(
    private readonly db: Database,
    private readonly models: ModelCache,
    private readonly workerId: string,
    private readonly logger: Logger,
  ) {}

  /** Serves pending requests; a call while serving makes it look once more. */
  wake(): void {
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

  async #serve(): Promise<void> {
    try {
      for (;;) {
        const claimed = await this.db.query<Request>('SELECT * FROM superduper._claim_requests($1, $2, $3)', [
          this.workerId,
          this.models.functions.names(),
          64,
        ]);
        if (claimed.rows.length === 0) return;
        const byModel = new Map<string, Request[]>();
        for (const request of claimed.rows) byModel.set(request.model, [...(byModel.get(request.model) ?? []), request]);
        const ids: string[] = [];
        const results: Array<string | null> = [];
        const errors: Array<string | null> = [];
        await Promise.all(
          [...byModel.values()].map(async (requests) => {
            const answers = await this.#answer(requests);
            requests.forEach((request, i) => {
              ids.push(request.id);
              results.push(answers[i]!.ok ? JSON.stringify(answers[i]!.value) : null);
              errors.push(answers[i]!.ok ? null : answers[i]!.error);
            });
          }),
        );
        await this.db.query('SELECT superduper._answer_requests($1::bigint[], $2::jsonb[], $3::text[])', [ids, results, errors]);
      }
    } catch (error) {
      this.logger.error({ error: describeError(error) }, 'could not serve model calls from SQL');
    }
  }

  async #answer(requests: Request[]): Promise<Array<{ ok: true; value: unknown } | { ok: false; error: string }>> {
    const first = requests[0]!;
    try {
      const model = await this.models.get({
        name: first.model,
        runtime: first.runtime,
        output: first.output,
        config: first.model_config,
        artifact: first.model_artifact,
        spec_hash: first.model_hash,
      });
      const outputs = await model.predict(requests.map((r) => r.input));
      if (!Array.isArray(outputs) || outputs.length !== requests.length) {
        throw new Error(`model "${first.model}" returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${requests.length} inputs`);
      }
      return outputs.map((output) => {
        try {
          const checked = checkOutput(output, first.output, first.model);
          // Vectors travel as JSON arrays; jsonb outputs arrive as JSON text.
          const value = first.output.type === 'vector' ? Array.from(checked as ArrayLike<number>) : first.output.type === 'jsonb' ? JSON.parse(checked as string) : checked;
          return { ok: true as const, value };
        } catch (error) {
          return { ok: false as const, error: (error as Error).message };
        }
      });
    } catch (error) {
      return requests.map(() => ({ ok: false as const, error: describeError(error) }));
    }
  }
}
