import { connect, type Superduper } from '../client.js';
import { SuperduperError } from '../errors.js';
import { createLogger } from '../logger.js';

/** The database a command works on: its argument, else SUPERDUPER_URI, else DATABASE_URL. */
export function resolveUri(uri: string | undefined): string {
  const resolved = uri ?? process.env.SUPERDUPER_URI ?? process.env.DATABASE_URL;
  if (!resolved) {
    throw new SuperduperError('no database given', {
      hint: 'Pass a connection URI (postgres://user@host:5432/db), or set SUPERDUPER_URI.',
    });
  }
  return resolved;
}

export async function openDatabase(uri: string | undefined, options: { requireInstalled?: boolean; logLevel?: string } = {}): Promise<Superduper> {
  const db = await connect(resolveUri(uri), { logger: createLogger(options.logLevel ?? process.env.SUPERDUPER_LOG_LEVEL ?? 'warn') });
  if (options.requireInstalled ?? true) {
    const installed = await db.db.query<{ ok: boolean }>(`SELECT to_regclass('superduper._listeners') IS NOT NULL AS ok`);
    if (!installed.rows[0]?.ok) {
      await db.close();
      throw new SuperduperError('superduper is not installed in this database', {
        hint: 'Run "superduper install <uri>" first.',
      });
    }
  }
  return db;
}
