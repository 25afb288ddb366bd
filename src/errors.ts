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

/** SQLSTATEs after which retrying the same statement later can succeed. */
const transientSqlStates = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000', '08003', '08006', '08001', '08004', // connection exceptions
  '53300', // too_many_connections
]);

export function isTransientDatabaseError(thrown: unknown): boolean {
  const code = (thrown as { code?: unknown })?.code;
  if (typeof code === 'string' && transientSqlStates.has(code)) return true;
  const message = coerceError(thrown).message;
  return /Connection terminated|ECONNREFUSED|ECONNRESET|connection timeout|Client has encountered a connection error/i.test(message);
}
