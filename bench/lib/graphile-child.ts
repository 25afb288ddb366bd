/**
 * The streaming benchmark's baseline (bench/streaming.ts): the same pipeline
 * built by hand on graphile-worker, as its documentation has it. A trigger on
 * gw_events calls graphile_worker.add_job('compute', {id, body}) for each
 * row (set up by the benchmark); this worker, at graphile-worker's defaults
 * (concurrency 1 unless given, its LISTEN for new jobs, poll interval 2 s), runs the same
 * ~busy-model-ms model on the job's body and writes the 16-d output into
 * gw_out in one statement.
 *   node bench/dist/graphile-child.mjs <uri> <busy-model-ms> [concurrency, default 1]
 * Prints "ready" once running; SIGTERM stops it.
 */
import { Logger, run } from 'graphile-worker';

const [uri, busyMs, concurrency] = process.argv.slice(2);
const ms = Number(busyMs);
const busy = (text: string) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
  return Array.from({ length: 16 }, (_, i) => (text.length + i) % 7);
};
const runner = await run({
  connectionString: uri,
  concurrency: Number(concurrency ?? 1),
  noHandleSignals: true,
  // Warnings and errors only: its default logs a line per job, which the sidecar does not.
  logger: new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`);
  }),
  taskList: {
    compute: async (payload, helpers) => {
      const { id, body } = payload as { id: string; body: string };
      const output = `[${busy(body).join(',')}]`;
      await helpers.query('INSERT INTO gw_out (id, output) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET output = excluded.output', [id, output]);
    },
  },
});
process.stdout.write(`ready ${process.pid}\n`);
process.once('SIGTERM', async () => {
  await runner.stop();
  process.exit(0);
});
