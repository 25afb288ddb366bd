import type { Backend } from '../backends/backend.js';
import { isListenerChanged } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import { runBatch } from './batch.js';
import type { InFlight, ListenerInfo } from './listener-info.js';
import type { BatchObserver } from './metrics.js';

export interface LanesContext {
  backend: Backend;
  models: ModelCache;
  sidecarId: string;
  logger: Logger;
  concurrency: number;
  /** The listeners known to have work: emptied as they run out. */
  hot: Set<number>;
  listeners(): ReadonlyMap<number, ListenerInfo>;
  inFlight: Set<InFlight>;
  stopping(): boolean;
  /** A batch was written (its round trip began at startedAt). */
  wrote(startedAt: number): void;
  /** A building version ran out of work: it may be complete. */
  promote(): Promise<void>;
  /** The listeners must be read again (one was removed or replaced). */
  refreshNeeded(): void;
  /**
   * Reads again which listeners have work, if the reconciliation interval has
   * passed (or a refresh was asked for), so that listeners whose work appeared
   * meanwhile join the hot ones (see workHotListeners).
   */
  reconcile(): Promise<void>;
  /** The sidecar's metrics, if it has them. */
  observer?: BatchObserver;
}

/**
 * Runs batches of the listeners known to have work, round-robin, in up to
 * `concurrency` lanes: while one lane's model computes, another's claim or
 * write is in the database, so neither waits for the other. One lane starts;
 * the next starts when a batch shows a backlog (a full batch, a backfill
 * range, or more than one listener with work): a wake-up for one row then
 * costs one claim, not one per lane (the others found nothing, on the same
 * two cores as the row's own claim and model). When one lane fails the others finish their batch and stop, so
 * that nothing of this sidecar is in flight when the error is handled.
 *
 * Between batches it reconciles (context.reconcile): while this sidecar works,
 * nothing else tells it of new work (writers notify only a sidecar marked
 * asleep), so without it a listener with a long backlog (a chunk backfill, a
 * steady stream of edits) kept every other listener waiting until that
 * backlog was gone, the embeddings of the chunks it wrote included.
 */
export async function workHotListeners(context: LanesContext): Promise<void> {
  const { hot } = context;
  let turn = 0;
  let failed = false;
  const next = (): ListenerInfo | undefined => {
    const ids = [...hot];
    if (ids.length === 0) return undefined;
    const id = ids[turn++ % ids.length]!;
    return context.listeners().get(id);
  };
  const lane = async () => {
    while (!context.stopping() && !failed && hot.size > 0) {
      try {
        await context.reconcile();
      } catch (error) {
        failed = true;
        throw error;
      }
      const listener = next();
      if (!listener) return;
      const batchStarted = Date.now();
      try {
        const outcome = await runBatch(
          {
            backend: context.backend,
            models: context.models,
            sidecarId: context.sidecarId,
            logger: context.logger,
            onClaim: (claim, done) => (done ? context.inFlight.delete(claim) : context.inFlight.add(claim)),
            observer: context.observer,
          },
          listener,
        );
        if (outcome.claimed === 0) {
          hot.delete(listener.id);
          if (listener.state === 'building') await context.promote();
        } else {
          if (outcome.source === 'backfill' || outcome.claimed >= listener.settings.batch_size) startLane();
          context.wrote(batchStarted);
          context.logger.debug({ listener: listener.name, ...outcome }, 'batch');
        }
      } catch (error) {
        hot.delete(listener.id);
        if (isListenerChanged(error)) {
          // Its code is gone or replaced: removed, frozen or promoted meanwhile.
          context.refreshNeeded();
          continue;
        }
        failed = true;
        throw error;
      }
    }
  };
  // Each lane's failure is caught as it starts: a lane failing while an
  // earlier one is still awaited below must not be an unhandled rejection
  // (which ends the process).
  let firstError: { reason: unknown } | undefined;
  const lanes: Promise<void>[] = [];
  function startLane() {
    if (lanes.length >= context.concurrency || failed) return;
    lanes.push(
      lane().catch((reason: unknown) => {
        firstError ??= { reason };
      }),
    );
  }
  startLane();
  if (hot.size > 1) startLane(); // several listeners with work: a backlog too
  // Lanes started meanwhile are pushed before the ones awaited here end.
  for (let i = 0; i < lanes.length; i++) await lanes[i];
  if (firstError) throw firstError.reason;
}
