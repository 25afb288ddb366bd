/**
 * One error class with an optional hint, instead of a zoo of subclasses: callers
 * branch on `code` when they must, people read `message` and `hint`.
 */
export class SuperduperError extends Error {
  readonly hint: string | undefined;
  readonly code: string | undefined;

  constructor(message: string, options: { hint?: string; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SuperduperError';
    this.hint = options.hint;
    this.code = options.code;
  }
}

/** Anything thrown, as an Error (strings and objects from third-party code included). */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(JSON.stringify(thrown));
  } catch {
    return new Error(String(thrown));
  }
}

/** The message of an error and, for PostgreSQL errors, their hint and detail. */
export function describeError(thrown: unknown): string {
  const error = coerceError(thrown) as Error & { hint?: string; detail?: string };
  const parts = [error.message];
  if (error.detail) parts.push(`detail: ${error.detail}`);
  if (error.hint) parts.push(`hint: ${error.hint}`);
  return parts.join('\n');
}

/**
 * What an error from the database means for whoever made the call:
 * - 'connection': the connection, or the server's availability (restart,
 *   crash, failover, refused or stalled connections, a server in recovery).
 *   Retry after reconnecting; nothing about the statement was wrong.
 * - 'retry': the statement lost a race (deadlock, serialization, lock
 *   timeout). Run it again.
 * - 'fatal': no retry can fix it (bad password, database gone); a person must act.
 * - 'statement': the statement's own error (a constraint, bad SQL, a raise).
 */
export type DatabaseErrorKind = 'connection' | 'retry' | 'fatal' | 'statement';

const connectionStates = new Set([
  '57P01', // admin_shutdown: pg_ctl stop/restart -m fast, pg_terminate_backend
  '57P02', // crash_shutdown: another backend crashed, or -m immediate
  '57P03', // cannot_connect_now: starting up, shutting down, in recovery without hot standby
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction: a standby (a failover not finished, or DNS not yet moved)
]);
const retryStates = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
]);
const fatalStates = new Set([
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification: no pg_hba.conf entry, role does not exist
  '3D000', // invalid_catalog_name: the database does not exist (dropped)
]);
// node-postgres and Node's socket errors, which carry no SQLSTATE.
const connectionErrnos = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND']);
const connectionMessages =
  /Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end|server closed the connection unexpectedly|the database did not answer/i;

export function classifyDatabaseError(thrown: unknown): DatabaseErrorKind {
  const mongo = classifyMongoError(thrown);
  if (mongo) return mongo;
  const code = (thrown as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (fatalStates.has(code)) return 'fatal';
    if (connectionStates.has(code) || code.startsWith('08')) return 'connection';
    if (retryStates.has(code)) return 'retry';
    if (connectionErrnos.has(code)) return 'connection';
    if (code === STALLED) return 'connection';
  }
  return connectionMessages.test(coerceError(thrown).message) ? 'connection' : 'statement';
}

// The MongoDB driver's errors: network and server-selection failures by class
// name, and the server's numeric codes for a node going away or stepping down
// (its "retryable" errors). The driver itself is not imported here: PostgreSQL
// users never load it.
const mongoConnectionErrors = /^Mongo(Network|NetworkTimeout|ServerSelection|PoolCleared|NotConnected|ServerClosed|TopologyClosed)Error$/;
const mongoConnectionCodes = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
const mongoFatalCodes = new Set([13, 18]); // Unauthorized, AuthenticationFailed

function classifyMongoError(thrown: unknown): DatabaseErrorKind | undefined {
  const error = thrown as { name?: unknown; code?: unknown; errorLabels?: unknown } | undefined;
  if (typeof error?.name !== 'string' || !error.name.startsWith('Mongo')) return undefined;
  if (mongoConnectionErrors.test(error.name)) return 'connection';
  if (typeof error.code === 'number') {
    if (mongoConnectionCodes.has(error.code)) return 'connection';
    if (mongoFatalCodes.has(error.code)) return 'fatal';
    if (error.code === 112 || error.code === 251) return 'retry'; // WriteConflict, NoSuchTransaction
  }
  return 'statement';
}

/** The code of the error a query gets when the database did not answer it in time (see backends/postgres.ts). */
export const STALLED = 'SUPERDUPER_DB_STALLED';

/** SQLSTATEs and failures after which retrying the same statement later can succeed. */
export function isTransientDatabaseError(thrown: unknown): boolean {
  const kind = classifyDatabaseError(thrown);
  return kind === 'connection' || kind === 'retry';
}

/**
 * The code of the error a backend's queue throws when a listener was removed or
 * replaced while a sidecar's call waited: the sidecar reads its listeners again.
 */
export const LISTENER_CHANGED = 'SUPERDUPER_LISTENER_CHANGED';

export function isListenerChanged(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === LISTENER_CHANGED;
}

/** An error as log fields: its description and, for errors with one, where it was thrown. */
export function errorFields(thrown: unknown): { error: string; stack?: string } {
  const error = coerceError(thrown);
  const stack = error.stack?.split('\n').slice(1).join('\n');
  return stack ? { error: describeError(error), stack } : { error: describeError(error) };
}
