import { openDatabase } from '../context.js';

/** Runs a sidecar until SIGTERM or SIGINT, then stops gracefully. */
export async function startCommand(uri: string | undefined, options: { reconcileMs: number; logLevel: string }): Promise<void> {
  const db = await openDatabase(uri, { logLevel: options.logLevel });
  const worker = await db.start({ reconcileMs: options.reconcileMs });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      db.logger.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await worker.stop();
  await db.close();
}
