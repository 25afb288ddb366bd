import type { EmbeddedDatabase } from '../backends/pglite.js';
import type { Superduper } from '../client.js';
import { serveEmbedded } from '../embedded/wire-server.js';
import { SuperduperError } from '../errors.js';

/**
 * Serves an embedded database on a PostgreSQL wire endpoint until SIGINT or
 * SIGTERM, with a sidecar running in this process so that rows written through
 * the endpoint get their outputs.
 */
export async function serveUntilStopped(db: Superduper, options: { host: string; port: number; write: (text: string) => void }): Promise<void> {
  const server = await serveEmbedded(db.db as EmbeddedDatabase, { host: options.host, port: options.port, logger: db.logger }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new SuperduperError(`port ${options.port} on ${options.host} is in use`, { hint: 'Pass another --port (0 picks a free one).' });
  });
  options.write(
    `\nServing the embedded database on ${server.host}:${server.port} (stop with Ctrl-C). From another terminal:\n\n` +
      `  psql "${server.uri}"\n\n` +
      `One client's transaction holds the embedded database until it ends (it has one session): keep them short.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  options.write('stopping\n');
  await server.close();
}
