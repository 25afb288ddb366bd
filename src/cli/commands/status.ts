import { openDatabase } from '../context.js';
import { duration, table } from '../format.js';

export async function statusCommand(uri: string | undefined, options: { json: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const status = await db.status();
    if (options.json) {
      process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      return;
    }
    if (status.length === 0) {
      process.stdout.write('no listeners\n');
      return;
    }
    const rows = status.map((s) => ({ ...s, lag: duration(s.lag_seconds), note: s.note ?? '' }));
    process.stdout.write(
      `${table(rows, ['listener', 'version', 'state', 'model', 'source', 'pending', 'in_flight', 'failed', 'done', 'lag', 'note'])}\n`,
    );
    const workers = await db.db.query<{ id: string; sleeping: boolean; seen: number }>(
      `SELECT id, sleeping, extract(epoch FROM now() - seen_at)::float8 AS seen FROM superduper.workers ORDER BY started_at`,
    );
    process.stdout.write(
      workers.rows.length === 0
        ? '\nno sidecar running (start one with "superduper start <uri>")\n'
        : `\nsidecars: ${workers.rows.map((w) => `${w.id} (${w.sleeping ? 'idle' : 'working'}, seen ${duration(w.seen)} ago)`).join(', ')}\n`,
    );
  } finally {
    await db.close();
  }
}
