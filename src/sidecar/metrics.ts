import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ListenerStatus } from '../backends/types.js';
import { apiUsage, estimatedCostUsd, type ApiUsageEvents } from '../models/api/usage.js';
import type { ListenerInfo } from './listener-info.js';

/**
 * What a batch reports as it goes (batch.ts): each step's rows and seconds.
 * A sidecar without metrics reports to nobody.
 */
export interface BatchObserver {
  claimed(listener: ListenerInfo, rows: number, seconds: number): void;
  /** One model call of a batch: its inputs and how long the model took. */
  predicted(listener: ListenerInfo, inputs: number, seconds: number): void;
  wrote(listener: ListenerInfo, written: number, failed: number, seconds: number): void;
}

/** What the scrape reads when Prometheus asks: the database's status, and this sidecar's own. */
export interface MetricsSources {
  status(): Promise<ListenerStatus[]>;
  sidecar(): { state: string; outages: number };
}

const SIDECAR_STATES = ['starting', 'working', 'idle', 'reconnecting', 'waiting for install', 'stopped', 'failed'];
/** Seconds, from a fast claim to a slow API model call. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const ROWS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000];

/**
 * A sidecar's Prometheus metrics (prom-client, a registry of its own). The
 * listeners' queue depth, rows in flight, failed rows and lag are read from
 * superduper.status at each scrape, so they are the database's numbers, the
 * same for every sidecar; the rest is what this sidecar did since it started:
 * rows computed and failed, batch sizes, and the latency of claims, model calls
 * and writes; and per API model, its requests (by outcome), retries, tokens
 * and estimated cost, from every call this process made (listeners' and SQL
 * callers'). docs/operations.md lists them with the alerts worth having.
 */
export class SidecarMetrics implements BatchObserver {
  readonly registry = new Registry();
  readonly #computed: Counter<'listener'>;
  readonly #failed: Counter<'listener'>;
  readonly #batchRows: Histogram<'listener'>;
  readonly #claimSeconds: Histogram<'listener'>;
  readonly #writeSeconds: Histogram<'listener'>;
  readonly #modelSeconds: Histogram<'model'>;
  readonly #unsubscribe: () => void;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.#computed = new Counter({ name: 'superduper_rows_computed_total', help: 'Rows whose outputs this sidecar wrote.', labelNames: ['listener'], registers });
    this.#failed = new Counter({
      name: 'superduper_rows_failed_total',
      help: 'Rows whose model call or write failed in this sidecar (each attempt; superduper_listener_failed counts those failed for good).',
      labelNames: ['listener'],
      registers,
    });
    this.#batchRows = new Histogram({ name: 'superduper_batch_rows', help: 'Rows per claimed batch.', labelNames: ['listener'], buckets: ROWS_BUCKETS, registers });
    this.#claimSeconds = new Histogram({ name: 'superduper_claim_seconds', help: 'Time to claim a batch.', labelNames: ['listener'], buckets: LATENCY_BUCKETS, registers });
    this.#writeSeconds = new Histogram({ name: 'superduper_write_seconds', help: 'Time to write a batch.', labelNames: ['listener'], buckets: LATENCY_BUCKETS, registers });
    this.#modelSeconds = new Histogram({ name: 'superduper_model_seconds', help: 'Time of one model call.', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });

    // Read at scrape time, one status query for all of them.
    let reading: Promise<ListenerStatus[]> | undefined;
    const status = () => (reading ??= sources.status().finally(() => setTimeout(() => (reading = undefined), 0)));
    const fromStatus = (name: string, help: string, value: (s: ListenerStatus) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['listener', 'version', 'state'],
        registers,
        async collect() {
          this.reset();
          for (const s of await status()) this.set({ listener: s.listener, version: String(s.version), state: s.state }, value(s));
        },
      });
    fromStatus('superduper_listener_pending', 'Changes and backfill rows not yet claimed (superduper.status pending).', (s) => s.pending);
    fromStatus('superduper_listener_in_flight', 'Rows claimed by a sidecar (superduper.status in_flight).', (s) => s.in_flight);
    fromStatus('superduper_listener_computing', 'Rows of claimed backfill ranges computed, not yet written (superduper.status computing).', (s) => s.computing);
    fromStatus('superduper_listener_failed', 'Rows failed for good (superduper.status failed).', (s) => s.failed);
    fromStatus('superduper_listener_lag_seconds', 'Age of the oldest change not yet computed (superduper.status lag).', (s) => s.lag_seconds);
    new Gauge({
      name: 'superduper_sidecar_up',
      help: '1 while this sidecar runs and reaches the database (working or idle), else 0.',
      registers,
      collect() {
        const { state } = sources.sidecar();
        this.set(state === 'working' || state === 'idle' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'superduper_sidecar_state',
      help: 'This sidecar\'s state: 1 for the one it is in.',
      labelNames: ['state'],
      registers,
      collect() {
        const { state } = sources.sidecar();
        for (const s of SIDECAR_STATES) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    const api = ['model', 'provider', 'api_model'] as const;
    const requests = new Counter({ name: 'superduper_api_requests_total', help: 'Requests to model APIs, by how they ended (ok, or the error code).', labelNames: [...api, 'outcome'], registers });
    const retries = new Counter({ name: 'superduper_api_retries_total', help: 'Requests to model APIs made again (429, 5xx, network errors, timeouts).', labelNames: api, registers });
    const tokens = new Counter({ name: 'superduper_api_tokens_total', help: 'Tokens model APIs said they counted, input and output.', labelNames: [...api, 'direction'], registers });
    const cost = new Counter({
      name: 'superduper_api_cost_usd_total',
      help: "Estimated cost of those tokens at the provider's published price (only for models with a known price; see docs/operations.md).",
      labelNames: api,
      registers,
    });
    const labels = (u: ApiUsageEvents['retry'][0]) => ({ model: u.model, provider: u.provider, api_model: u.apiModel });
    const onRequest = (u: ApiUsageEvents['request'][0]) => requests.inc({ ...labels(u), outcome: u.outcome });
    const onRetry = (u: ApiUsageEvents['retry'][0]) => retries.inc(labels(u));
    const onTokens = (u: ApiUsageEvents['tokens'][0]) => {
      tokens.inc({ ...labels(u), direction: 'input' }, u.input);
      tokens.inc({ ...labels(u), direction: 'output' }, u.output);
      const usd = estimatedCostUsd(u, u);
      if (usd !== undefined) cost.inc(labels(u), usd);
    };
    apiUsage.on('request', onRequest);
    apiUsage.on('retry', onRetry);
    apiUsage.on('tokens', onTokens);
    this.#unsubscribe = () => {
      apiUsage.off('request', onRequest);
      apiUsage.off('retry', onRetry);
      apiUsage.off('tokens', onTokens);
    };
    new Gauge({
      name: 'superduper_sidecar_outages',
      help: 'Database outages this sidecar came through since it started.',
      registers,
      collect() {
        this.set(sources.sidecar().outages);
      },
    });
  }

  /** Stops counting API calls (they are process-wide events). */
  close(): void {
    this.#unsubscribe();
  }

  claimed(listener: ListenerInfo, rows: number, seconds: number): void {
    this.#claimSeconds.observe({ listener: listener.name }, seconds);
    if (rows > 0) this.#batchRows.observe({ listener: listener.name }, rows);
  }

  predicted(listener: ListenerInfo, _inputs: number, seconds: number): void {
    this.#modelSeconds.observe({ model: listener.model }, seconds);
  }

  wrote(listener: ListenerInfo, written: number, failed: number, seconds: number): void {
    this.#writeSeconds.observe({ listener: listener.name }, seconds);
    if (written > 0) this.#computed.inc({ listener: listener.name }, written);
    if (failed > 0) this.#failed.inc({ listener: listener.name }, failed);
  }
}
