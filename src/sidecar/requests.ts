import { backoffMs } from '../backends/connection-health.js';
import type { Backend, CallAnswer, ModelCallRequest as Request, RequestChannel } from '../backends/backend.js';
import { classifyDatabaseError, errorFields } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import { answerModelCalls } from './model-calls.js';

/**
 * Answers model calls made from queries (superduper.embed() / predict() / like()
 * from SQL sessions), through the backend's request channel. A caller is waiting
 * on each request, so they are served as soon as they arrive, apart from the
 * listeners' batches. The channel is made again after it fails.
 */
export class RequestServer {
  #running: Promise<void> | undefined;
  #again = false;
  #channel: RequestChannel | undefined;
  readonly #named: string[] = [];
  readonly #carried: Request[] = [];
  /** The model versions of requests this sidecar has read, by name: what a carried request needs (one entry per model). */
  readonly #known = new Map<string, Request['record']>();
  #closed = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly models: ModelCache,
    private readonly sidecarId: string,
    private readonly logger: Logger,
    private readonly reconnectMaxMs = 1000,
  ) {}

  /** A request a NOTIFY named: claimed by its primary key first. */
  take(id: string): void {
    this.#named.push(id);
    this.wake();
  }

  /**
   * An embedding request whose wake-up carried its model version and input.
   * Embeddings are read, not claimed, so when this sidecar has read that version
   * of the model before, it computes at once, saving the read; otherwise it
   * takes the request by its id.
   */
  takeCarried(carried: { id: string; model: string; hash: string; input: unknown }): void {
    const known = this.#known.get(carried.model);
    if (!known || known.spec_hash !== carried.hash) {
      this.take(carried.id);
      return;
    }
    this.#carried.push({ id: carried.id, model: carried.model, kind: 'embed', input: carried.input, record: known });
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

  async #open(): Promise<RequestChannel> {
    this.#channel ??= await this.backend.modelCalls.open();
    return this.#channel;
  }

  /** Closes the channel (on stop); serves nothing after. */
  release(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#channel?.close();
    this.#channel = undefined;
  }

  async #serve(): Promise<void> {
    try {
      const channel = await this.#open();
      for (;;) {
        // Embeddings whose NOTIFY carried everything: nothing to read first.
        const carried = this.#carried.splice(0);
        if (carried.length > 0) {
          await this.#answerAll(channel, carried, performance.now());
          continue;
        }
        const named = this.#named.shift() ?? null;
        const started = performance.now();
        const claimed = await channel.claim(this.sidecarId, this.models.functions.names(), 64, named);
        this.#failures = 0;
        if (claimed.length === 0 && named !== null) continue; // taken by another sidecar, or not ours
        if (claimed.length === 0) return;
        for (const request of claimed) this.#known.set(request.model, request.record);
        await this.#answerAll(channel, claimed, started);
      }
    } catch (error) {
      // The channel may be broken: open a new one, and look again soon, since
      // callers are waiting (a request whose wake-up came meanwhile is claimed as
      // the oldest pending one).
      this.#channel?.close(true);
      this.#channel = undefined;
      if (classifyDatabaseError(error) !== 'connection') {
        this.logger.error(errorFields(error), 'could not serve model calls from SQL');
      }
      if (!this.#closed) {
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.wake(), backoffMs(++this.#failures, 100, this.reconnectMaxMs));
        this.#retry.unref();
      }
    }
  }

  async #answerAll(channel: RequestChannel, requests: Request[], started: number): Promise<void> {
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
    await channel.answer(ids, results, errors);
    this.logger.debug(
      { requests: ids.length, readMs: readAt - started, computeMs: computedAt - readAt, answerMs: performance.now() - computedAt },
      'answered model calls from SQL',
    );
  }

  #answer(requests: Request[]): Promise<CallAnswer[]> {
    return answerModelCalls(this.models, requests[0]!.record, requests.map((r) => r.input));
  }
}
