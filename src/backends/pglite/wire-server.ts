import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../logger.js';
import { ChannelRouter } from './channel-router.js';
import type { EmbeddedDatabase } from './driver.js';
import { WireClient, type StartupFacts } from './wire-client.js';
import { errorResponse } from './wire-protocol.js';

export interface WireServer {
  host: string;
  port: number;
  /** postgres://… to give psql or any PostgreSQL client. */
  uri: string;
  close(): Promise<void>;
}

export interface WireServerOptions {
  host?: string;
  port?: number;
  logger: Logger;
  /**
   * A client idle inside a transaction block this long has its transaction
   * rolled back and its connection closed (25P03), so that the others go on:
   * the block holds the only session. Default 30 s; 0 turns it off.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * A statement waiting this long for the session fails (55P03) with a message
   * naming the client that holds it. Default 60 s; 0 waits for ever.
   */
  waitTimeoutMs?: number;
}

/**
 * A PostgreSQL endpoint for the embedded database, so that psql, BI tools and
 * any driver can use it. Each client's messages are handed to PGlite's single
 * backend in turns (SharedSession): a simple query, or an extended-protocol
 * batch up to Sync, is one turn, and a client inside a transaction block keeps
 * the session until the block ends. What a client would have of its own on a
 * server, it has here too:
 * - its prepared statements and portals (names scoped per client, released
 *   when it goes: wire-statements.ts);
 * - its settings: startup parameters, `options`, and what it SETs, worn by the
 *   session during its turns only (session-settings.ts);
 * - its COPY FROM STDIN (wire-copy.ts) and COPY TO STDOUT;
 * - a cancel key: a cancel request takes its statement out of the line for the
 *   session (a statement PGlite is running cannot be interrupted);
 * - a model call (SDM01) answered by the host and the statement run again, from
 *   a savepoint inside a transaction block; a wait_for (SDW01) run again after
 *   the sidecar had the session for a moment;
 * - notifications for the channels it listens on (channel-router.ts); a
 *   committed write wakes the sidecar;
 * - the privileges of the role it logged in as (SET SESSION AUTHORIZATION per
 *   turn): the same answers as on a server, though not a security boundary
 *   (anyone who can reach the port can log in as postgres; bind it to
 *   127.0.0.1, the default).
 * A malformed message ends its client's connection (08P01), never the host.
 */
export async function serveEmbedded(db: EmbeddedDatabase, options: WireServerOptions): Promise<WireServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const router = new ChannelRouter<WireClient>();
  const limits = { idleInTransactionMs: options.idleInTransactionTimeoutMs ?? 30_000, waitMs: options.waitTimeoutMs ?? 60_000 };
  const known: StartupFacts = { roles: new Map(), reported: new Map() };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new WireClient(db, socket, router, options.logger, limits, known);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const uri = `postgres://postgres@${host}:${port}/postgres?sslmode=disable`;
  db.uri = uri;
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (db.uri === uri) db.uri = undefined;
  };
  db.onClose(close);
  db.onStopped((stopped) => {
    options.logger.error({ err: stopped }, 'the embedded database stopped: the endpoint closes');
    for (const socket of sockets) socket.end(errorResponse('FATAL', '57P01', stopped.message, stopped.hint));
    server.close();
  });
  return { host, port, uri, close };
}
