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
    const workers = await db.db.query<{ id: string; state: string; seen: number; outages: number; last: number | null; reason: string | null }>(
      `SELECT id, state, extract(epoch FROM now() - seen_at)::float8 AS seen, outages,
              extract(epoch FROM last_outage)::float8 AS last, last_outage_reason AS reason
       FROM superduper.workers ORDER BY started_at`,
    );
    const describe = (w: (typeof workers.rows)[number]) => {
      const outages = w.outages > 0 ? `; came through ${w.outages} outage(s), the last ${duration(w.last ?? 0)}: ${w.reason}` : '';
      const state = w.state === 'not answering' ? `not answering for ${duration(w.seen)}: reconnecting, or gone` : `${w.state}, seen ${duration(w.seen)} ago`;
      return `  ${w.id} (${state}${outages})`;
    };
    process.stdout.write(
      workers.rows.length === 0
        ? '\nno sidecar running (start one with "superduper start <uri>")\n'
        : `\nsidecars:\n${workers.rows.map(describe).join('\n')}\n`,
    );
  } finally {
    await db.close();
  }
}
