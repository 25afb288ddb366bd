import { SuperduperError } from '../../errors.js';
import { openDatabase } from '../context.js';
import { table } from '../format.js';

export async function failuresCommand(listener: string | undefined, uri: string | undefined, options: { retry: boolean; json: boolean }): Promise<void> {
  if (options.retry && !listener) {
    throw new SuperduperError('--retry needs a listener name', { hint: 'npx superduper failures <listener> [uri] --retry' });
  }
  const db = await openDatabase(uri);
  try {
    if (options.retry && listener) {
      process.stdout.write(`queued ${await db.retry(listener)} failed row(s) of ${listener} again\n`);
      return;
    }
    const failures = await db.failures(listener);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(failures, null, 2)}\n`);
      return;
    }
    if (failures.length === 0) {
      process.stdout.write('no failures\n');
      return;
    }
    const rows = failures.map((f) => ({ ...f, primary_key: f.primary_key.join(', '), failed_at: f.failed_at.toISOString() }));
    process.stdout.write(`${table(rows, ['listener', 'primary_key', 'attempts', 'failed_at', 'error'])}\n`);
  } finally {
    await db.close();
  }
}
