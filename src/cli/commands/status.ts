import type { SidecarRow } from '../../client.js';
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
    const sidecars = await db.sidecars();
    const describe = (w: SidecarRow) => {
      const outages = w.outages > 0 ? `; came through ${w.outages} outage(s), the last ${duration(w.last ?? 0)}: ${w.reason}` : '';
      const state = w.state === 'not answering' ? `not answering for ${duration(w.seen)}: reconnecting, or gone` : `${w.state}, seen ${duration(w.seen)} ago`;
      return `  ${w.id} (${state}${outages})`;
    };
    process.stdout.write(
      sidecars.length === 0
        ? '\nno sidecar running (start one with "npx superduper start <uri>")\n'
        : `\nsidecars:\n${sidecars.map(describe).join('\n')}\n`,
    );
  } finally {
    await db.close();
  }
}
