import type { Superduper } from '../client.js';
import { serveEmbedded } from '../backends/pglite/wire-server.js';
import { SuperduperError } from '../errors.js';

/**
 * Serves an embedded database on a PostgreSQL wire endpoint until SIGINT or
 * SIGTERM, with a sidecar running in this process so that rows written through
 * the endpoint get their outputs.
 */
export interface EndpointOptions {
  host: string;
  port: number;
  /** Seconds a client may stay idle in a transaction before it is rolled back (0: forever). */
  idleInTransactionTimeout: number;
  /** Seconds a statement may wait for the session before it fails (0: forever). */
  waitTimeout: number;
}

export async function serveUntilStopped(db: Superduper, options: EndpointOptions & { write: (text: string) => void }): Promise<void> {
  // Imported here: other commands never load PGlite.
  const { EmbeddedDatabase } = await import('../backends/pglite/driver.js');
  const embedded = db.backend.sql;
  if (!(embedded instanceof EmbeddedDatabase)) throw new SuperduperError(`only the embedded database is served (this is the ${db.backend.name} backend)`);
  const server = await serveEmbedded(embedded, {
    host: options.host,
    port: options.port,
    logger: db.logger,
    idleInTransactionTimeoutMs: options.idleInTransactionTimeout * 1000,
    waitTimeoutMs: options.waitTimeout * 1000,
  }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new SuperduperError(`port ${options.port} on ${options.host} is in use`, { hint: 'Pass another --port (0 picks a free one).' });
  });
  options.write(
    `\nServing the embedded database on ${server.host}:${server.port} (stop with Ctrl-C). From another terminal:\n\n` +
      `  psql "${server.uri}"\n\n` +
      `One client's transaction holds the embedded database until it ends (it has one session): keep them short.\n` +
      (options.idleInTransactionTimeout > 0
        ? `A client idle in a transaction for ${options.idleInTransactionTimeout} s is rolled back (--idle-in-transaction-timeout).\n`
        : ''),
  );
  const stopped = await new Promise<SuperduperError | undefined>((resolve) => {
    process.once('SIGINT', () => resolve(undefined));
    process.once('SIGTERM', () => resolve(undefined));
    embedded.onStopped(resolve);
  });
  options.write('stopping\n');
  await server.close();
  if (stopped) throw stopped;
}
