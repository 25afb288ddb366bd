import { backoffMs } from '../backends/connection-health.js';
import { connect, type Superduper } from '../client.js';
import { classifyDatabaseError, describeError, SuperduperError } from '../errors.js';
import { configuration } from '../config.js';
import { createLogger } from '../logger.js';
import { checkUri, connectionHint, looksLikeUri } from './uris.js';

/** The database a command works on: its argument, else SUPERDUPER_URI, else DATABASE_URL; checked to be a URI. */
export function resolveUri(uri: string | undefined): string {
  if (uri !== undefined) return checkUri(uri, 'the argument');
  const { uri: configured } = configuration();
  if (!configured) {
    throw new SuperduperError('no database given', {
      hint: 'Pass a connection URI (postgres://user@host:5432/db), or set SUPERDUPER_URI.',
    });
  }
  return checkUri(configured, process.env.SUPERDUPER_URI ? 'SUPERDUPER_URI' : 'DATABASE_URL');
}

/**
 * A command's optional name and optional URI, in either order of use: with
 * SUPERDUPER_URI set, "superduper failures docs_embedding" gives the name
 * alone, and "superduper wait postgres://…" the URI alone.
 */
export function nameAndUri(first: string | undefined, second: string | undefined): { name: string | undefined; uri: string | undefined } {
  if (second === undefined && first !== undefined) return looksLikeUri(first) ? { name: undefined, uri: first } : { name: first, uri: undefined };
  if (first !== undefined && second !== undefined && looksLikeUri(first) && !looksLikeUri(second)) return { name: second, uri: first };
  return { name: first, uri: second };
}

/** Connects, with a hint that says what to check when the connection fails. */
async function connectWithHint(uri: string, logLevel: string): Promise<Superduper> {
  const db = await connect(uri, { logger: createLogger(logLevel) }).catch((error: unknown) => {
    throw withConnectionHint(error, uri);
  });
  return db;
}

function withConnectionHint(error: unknown, uri: string): unknown {
  const hint = connectionHint(error, uri);
  if (!hint || (error as { hint?: string }).hint) return error;
  return new SuperduperError(describeError(error), { hint, code: (error as { code?: string }).code, cause: error });
}

export async function openDatabase(uri: string | undefined, options: { requireInstalled?: boolean; logLevel?: string } = {}): Promise<Superduper> {
  const resolved = resolveUri(uri);
  const db = await connectWithHint(resolved, options.logLevel ?? configuration().logLevel ?? 'warn');
  if (options.requireInstalled ?? true) {
    const installed = await db.installed().catch(async (error: unknown) => {
      await db.close();
      throw withConnectionHint(error, resolved);
    });
    if (!installed) {
      await db.close();
      throw new SuperduperError('superduper is not installed in this database', {
        hint: 'Run "npx superduper install <uri>" first.',
      });
    }
  }
  return db;
}

/**
 * Like openDatabase, for long-running commands (a sidecar started with its
 * server, or during a restart): a database that cannot be reached yet is
 * waited for (for as long as timeoutMs, when given), with one log line,
 * retrying with backoff; only errors no retry can fix (a refused login, a
 * missing database or layer) are thrown at once, with the code SUPERDUPER_FATAL.
 */
export async function openDatabaseWhenReachable(uri: string | undefined, options: { logLevel?: string; timeoutMs?: number } = {}): Promise<Superduper> {
  const resolved = resolveUri(uri);
  const logger = createLogger(options.logLevel ?? configuration().logLevel ?? 'warn');
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let waitingSince: number | undefined;
  for (let attempt = 1; ; attempt++) {
    let db: Superduper | undefined;
    try {
      db = await connect(resolved, { logger });
      if (!(await db.installed())) {
        throw new SuperduperError('superduper is not installed in this database', {
          hint: 'Run "npx superduper install <uri>" first.',
          code: 'SUPERDUPER_FATAL',
        });
      }
      if (waitingSince !== undefined) logger.info({ waitedMs: Date.now() - waitingSince }, 'the database is reachable');
      return db;
    } catch (error) {
      await db?.close();
      const kind = classifyDatabaseError(error);
      const code = (error as { code?: string }).code;
      if (kind !== 'connection' || (code === 'ENOTFOUND' && waitingSince === undefined) || Date.now() >= deadline) {
        if (error instanceof SuperduperError) throw error;
        throw new SuperduperError(describeError(error), {
          code: kind === 'fatal' || code === 'ENOTFOUND' ? 'SUPERDUPER_FATAL' : undefined,
          hint: connectionHint(error, resolved),
          cause: error,
        });
      }
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        logger.warn({ error: describeError(error).split('\n')[0] }, 'cannot reach the database yet; retrying until it answers');
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
    }
  }
}
