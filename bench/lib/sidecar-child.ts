/**
 * A sidecar in its own process, as in production, for benchmarks.
 *   node bench/dist/sidecar-child.mjs <uri> [busy-model-ms]
 * With busy-model-ms it registers function model "busy", which spends that much
 * CPU per call (a stand-in for a small model) and returns a 16-d vector.
 * Prints "ready" once started; SIGTERM stops it.
 */
import { connect } from '../../src/client.js';
import { createLogger } from '../../src/logger.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { benchMetrics } from './metrics.js';
import { timeline } from './timeline.js';

const [uri, busyMs] = process.argv.slice(2);
const db = await connect(uri!, { logger: createLogger(process.env.SUPERDUPER_LOG_LEVEL ?? 'warn') });
if (busyMs !== undefined) {
  const ms = Number(busyMs);
  await db.apply(
    functionModel({
      name: 'busy',
      output: { type: 'vector', dim: 16 },
      version: `busy-${ms}`,
      predict: (inputs: string[]) => {
        const until = performance.now() + ms;
        while (performance.now() < until);
        return inputs.map((text) => Array.from({ length: 16 }, (_, i) => (text.length + i) % 7));
      },
    }),
  );
}
// SUPERDUPER_BENCH_METRICS=1: with the metrics `superduper start --metrics`
// keeps, scraped every 5 s as Prometheus would (bench/metrics.ts).
const metrics = process.env.SUPERDUPER_BENCH_METRICS === '1' ? benchMetrics(db) : undefined;
// SUPERDUPER_BENCH_TIMELINE=<file>: each batch's claim, model and write, and
// each wake-up's arrival, timed (bench/lib/timeline.ts), saved at SIGTERM.
const timed = process.env.SUPERDUPER_BENCH_TIMELINE ? await timeline(uri!, process.env.SUPERDUPER_BENCH_TIMELINE) : undefined;
await db.start({ observer: metrics ?? timed?.observer });
process.stdout.write(`ready ${process.pid}\n`);
process.once('SIGTERM', async () => {
  await timed?.save();
  await db.close();
  process.exit(0);
});
