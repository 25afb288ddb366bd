import { SuperduperError } from '../../errors.js';
import { nameAndUri, openDatabaseWhenReachable } from '../context.js';
import { table } from '../format.js';

/**
 * Waits until every change committed before it has its output (superduper.wait_for),
 * for scripts that write rows and then read outputs. Exits 0 when every row's
 * output is current, 1 when some rows failed for good (listed) or the wait
 * timed out.
 */
export async function waitCommand(listener: string | undefined, uri: string | undefined, options: { timeout: number }): Promise<void> {
  // With one argument that is a connection string, it is the database (both are optional).
  ({ name: listener, uri } = nameAndUri(listener, uri));
  // A wait run during a restart or failover waits for the database too, within its timeout.
  const deadline = Date.now() + options.timeout * 1000;
  const db = await openDatabaseWhenReachable(uri, { timeoutMs: options.timeout * 1000 });
  try {
    const { failed } = await db.waitFor(listener, { timeoutMs: Math.max(0, deadline - Date.now()) });
    const what = listener ? `listener ${listener}` : 'every listener';
    if (failed.length === 0) {
      process.stdout.write(`${what}: every change made before the wait has its output\n`);
      return;
    }
    const rows = failed.map((f) => ({ ...f, primary_key: f.primary_key.join(', '), failed_at: f.failed_at.toISOString() }));
    process.stdout.write(`${table(rows, ['listener', 'primary_key', 'failed_at', 'error'])}\n`);
    throw new SuperduperError(`${what}: ${failed.length} row(s) failed for good and have no output`, {
      hint: `Fix the rows (or the model), then "npx superduper failures ${listener ?? '<listener>'} --retry" (with the URI after the listener, or in SUPERDUPER_URI).`,
    });
  } finally {
    await db.close();
  }
}
