import { SuperduperError } from '../errors.js';

/** Schemes a connection string may start with (src/backends/open.ts opens each). */
const SCHEMES = ['postgres://', 'postgresql://', 'pglite:', 'mongodb://', 'mongodb+srv://'];

/** Whether a command-line argument is a connection string rather than a name. */
export function looksLikeUri(value: string): boolean {
  return SCHEMES.some((scheme) => value.toLowerCase().startsWith(scheme));
}

/**
 * Checks a connection string before anything connects with it: without a
 * scheme, "localhost:54329/db" would be read by the driver as something else
 * (it connected to port 5432), and a name passed where the URI goes (a
 * listener, with SUPERDUPER_URI set) would be looked up as a host.
 */
export function checkUri(uri: string, from: string): string {
  if (looksLikeUri(uri)) return uri;
  const hostLike = /^[^\s/=]+(:\d+)?(\/\S*)?$/.test(uri) && /[.:/]/.test(uri);
  throw new SuperduperError(`${from} "${uri}" is not a connection URI`, {
    hint: hostLike
      ? `Write it with its scheme: postgres://${uri} (or mongodb://${uri}).`
      : `A connection URI starts with ${SCHEMES.join(', ')}. A name (of a listener, say) goes before the URI.`,
  });
}

/**
 * What to say about an error connecting to uri: the driver's messages
 * (ECONNREFUSED, a database or role that does not exist) with what to check.
 */
export function connectionHint(error: unknown, uri: string): string | undefined {
  const code = errorCode(error);
  let target: URL | undefined;
  try {
    target = new URL(uri);
  } catch {
    target = undefined;
  }
  const where = target ? `${target.hostname || 'localhost'}:${target.port || (target.protocol.startsWith('mongodb') ? '27017' : '5432')}` : 'the server';
  const database = target?.pathname.replace(/^\//, '') || undefined;
  const user = target ? decodeURIComponent(target.username) || undefined : undefined;
  switch (code) {
    case 'ECONNREFUSED':
      return `Nothing accepts connections at ${where}: start the server, or check the host and port in the URI.`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `The host ${target?.hostname ? `"${target.hostname}"` : ''} is not known here: check the host in the URI.`;
    case 'ETIMEDOUT':
      return `No answer from ${where}: check that the host is reachable (firewall, network) and the port is right.`;
    case '3D000':
      return `Create the database first (createdb ${database ?? '<name>'}, or CREATE DATABASE in psql), or check its name in the URI.`;
    case '28000':
      return `Create the role (CREATE ROLE ${user ?? '<name>'} LOGIN), or put an existing one in the URI (postgres://user@host/db); pg_hba.conf may also refuse it.`;
    case '28P01':
      return 'Check the password in the URI (or in PGPASSWORD / ~/.pgpass).';
    default:
      return undefined;
  }
}

/**
 * The code of a connection error, wherever the driver put it: on the error
 * (node-postgres), on one of an AggregateError's errors (a host with IPv4 and
 * IPv6 addresses), or only in the message (the MongoDB driver's server
 * selection error says "connect ECONNREFUSED 127.0.0.1:1").
 */
function errorCode(error: unknown): string | undefined {
  const found = error as { code?: unknown; cause?: unknown; errors?: unknown[]; message?: unknown } | undefined;
  if (typeof found?.code === 'string' && found.code !== '') return found.code;
  for (const inner of [found?.cause, ...(Array.isArray(found?.errors) ? found.errors : [])]) {
    if (inner && inner !== error) {
      const code = errorCode(inner);
      if (code) return code;
    }
  }
  return /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)\b/.exec(String(found?.message ?? ''))?.[1];
}
