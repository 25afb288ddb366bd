import { writeFileSync } from 'node:fs';
import pg from 'pg';
import type { BatchObserver } from '../../src/sidecar/metrics.js';

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export const wallMs = () => performance.timeOrigin + performance.now();

export interface TimelineEvent {
  /** claimed, predicted or wrote (as BatchObserver says), or notified (a NOTIFY reached this process). */
  kind: 'claimed' | 'predicted' | 'wrote' | 'notified';
  /** When it ended, wallMs(). */
  at: number;
  /** How long it took, ms (0 for notified). */
  ms: number;
  rows: number;
}

/**
 * For the streaming breakdown (bench/streaming.ts): a sidecar's batches as
 * timed events, and the moments its wake-up notifications reach the process,
 * seen on a LISTEN connection of its own (the sidecar's receives the same
 * NOTIFY at the same commit). Written to `file` when the process stops.
 */
export async function timeline(uri: string, file: string): Promise<{ observer: BatchObserver; save(): Promise<void> }> {
  const events: TimelineEvent[] = [];
  const listener = new pg.Client({ connectionString: uri });
  await listener.connect();
  listener.on('notification', () => events.push({ kind: 'notified', at: wallMs(), ms: 0, rows: 0 }));
  await listener.query('LISTEN superduper');
  const event = (kind: TimelineEvent['kind'], rows: number, seconds: number) => events.push({ kind, at: wallMs(), ms: seconds * 1000, rows });
  return {
    observer: {
      claimed: (_listener, rows, seconds) => event('claimed', rows, seconds),
      predicted: (_listener, rows, seconds) => event('predicted', rows, seconds),
      wrote: (_listener, rows, _failed, seconds) => event('wrote', rows, seconds),
    },
    async save() {
      await listener.end().catch(() => {});
      writeFileSync(file, JSON.stringify(events));
    },
  };
}
