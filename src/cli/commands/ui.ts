import { SuperduperError } from '../../errors.js';
import { serveUi } from '../../ui/server.js';
import { openDatabase, resolveUri } from '../context.js';

/**
 * Serves the status page (src/ui/) until SIGTERM or SIGINT. It reads the
 * database through superduper's public views and functions, as the role in
 * the URI, and is bound to 127.0.0.1 unless --host says otherwise.
 */
export async function uiCommand(uri: string | undefined, options: { host: string; port: number }): Promise<void> {
  if (/^mongodb(\+srv)?:/.test(resolveUri(uri))) {
    throw new SuperduperError('superduper ui reads PostgreSQL\'s views (superduper.status and the others); it has no MongoDB form yet', {
      hint: 'Use superduper status <uri> for a MongoDB database, or db.superduper.listeners in mongosh.',
    });
  }
  const db = await openDatabase(uri);
  try {
    const server = await serveUi(db.db, options).catch((error: unknown) => {
      throw new SuperduperError(`cannot serve the status page on ${options.host}:${options.port}: ${(error as Error).message}`, { hint: 'Pass another --port.' });
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    process.stdout.write(`status page: http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/ (Ctrl-C stops it)\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    server.close();
  } finally {
    await db.close();
  }
}
