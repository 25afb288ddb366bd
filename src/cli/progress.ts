import cliProgress from 'cli-progress';
import type { Superduper } from '../client.js';

/**
 * Shows a progress bar per listener while its backfill (and queue) drains.
 * Returns when the listeners are idle.
 */
export async function showProgress(db: Superduper, listeners: string[], options: { timeoutMs?: number } = {}): Promise<void> {
  const bars = new cliProgress.MultiBar(
    {
      format: ' {listener} |{bar}| {value}/{total} rows | {rate} rows/s | pending {pending}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  const byListener = new Map<string, cliProgress.SingleBar>();
  const started = Date.now();
  try {
    await db.waitUntilIdle({
      listeners,
      timeoutMs: options.timeoutMs ?? 24 * 3600 * 1000,
      pollMs: 250,
      countDone: true,
      onProgress: (status) => {
        for (const s of status) {
          const total = Math.max(s.backfill_total, (s.done ?? 0) + s.pending + s.in_flight);
          const value = Math.min(total, s.done ?? 0);
          const rate = Math.round((value / Math.max(1, Date.now() - started)) * 1000);
          const label = s.state === 'building' ? `${s.listener} (v${s.version}, rebuilding)` : s.listener;
          const payload = { listener: label, pending: s.pending, rate };
          let bar = byListener.get(label);
          if (!bar) {
            bar = bars.create(total, value, payload);
            byListener.set(label, bar);
          }
          bar.setTotal(total);
          bar.update(value, payload);
        }
      },
    });
  } finally {
    bars.stop();
  }
}
