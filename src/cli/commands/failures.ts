import { openDatabase } from '../context.js';
import { table } from '../format.js';

export async function failuresCommand(uri: string | undefined, listener: string | undefined, options: { retry: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    if (options.retry) {
      if (!listener) throw new Error('--retry needs a listener name');
      process.stdout.write(`queued ${await db.retry(listener)} failed row(s) of ${listener} again\n`);
      return;
    }
    const failures = await db.failures(listener);
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
