import type { Backend } from '../backends/backend.js';
import { classifyDatabaseError, describeError, SuperduperError } from '../errors.js';

/**
 * The errors that end a sidecar, because no retry can fix them, made clear:
 * a refused login, a missing database, the layer removed or newer than the
 * code, a host name that never resolved (reachedOnce: whether the database was
 * ever reached; a name that resolved before may be a DNS outage). Undefined
 * for every other error: the sidecar retries.
 */
export async function fatalError(error: unknown, backend: Backend, reachedOnce: boolean): Promise<Error | undefined> {
  const code = (error as { code?: string }).code;
  if (code === 'SUPERDUPER_NEWER_DATABASE') return error as Error;
  const kind = classifyDatabaseError(error);
  if (kind === 'fatal') {
    const hint =
      code === '3D000'
        ? 'The database does not exist (was it dropped or renamed?): fix the connection string, or create the database and install superduper in it.'
        : 'The server refused the login: check the user, password and pg_hba.conf, then start the sidecar again.';
    return new SuperduperError(`the sidecar cannot log in to the database: ${describeError(error)}`, { hint, code: 'SUPERDUPER_FATAL', cause: error });
  }
  if (kind === 'connection' && code === 'ENOTFOUND' && !reachedOnce) {
    return new SuperduperError(`the database host does not resolve: ${describeError(error)}`, {
      hint: 'Check the host name in the connection string.',
      code: 'SUPERDUPER_FATAL',
      cause: error,
    });
  }
  // superduper's own objects missing: removed, if its registry is gone too.
  if (kind === 'statement' && backend.missesOwnObject(error)) {
    const installed = await backend.installed().catch(() => true);
    if (!installed) {
      return new SuperduperError('the superduper layer is not installed in this database (it was removed?)', {
        hint: 'Run "npx superduper install <uri>", then start the sidecar again.',
        code: 'SUPERDUPER_FATAL',
        cause: error,
      });
    }
  }
  return undefined;
}
