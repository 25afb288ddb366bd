import net from 'node:net';

/**
 * A TCP proxy under the test's control, placed between a client (typically a
 * sidecar process) and a PostgreSQL server, to simulate network faults that a
 * real server restart cannot: resets, stalls, half-open connections, refusals.
 *
 * Modes, for connections accepted from now on:
 *   forward  bytes flow both ways to `target`
 *   freeze   the connection is accepted but no byte crosses, in either direction
 *   refuse   nothing listens on the port: connection attempts get ECONNREFUSED
 *
 * A frozen connection stays frozen for the rest of its life, even after
 * resume(): bytes held during the freeze are never delivered. That models a
 * connection through a middlebox that lost its state: the client's kernel keeps
 * ACKing, so TCP keepalive never fires, and only a client-side timeout can tell.
 * Only connections made after resume() forward again.
 *
 * Frozen means frozen on the server side too: a frozen connection's backend is
 * not told when the client gives up, so it lingers (holding whatever locks it
 * held) until the test calls halfOpen(), drop() or close(). Call halfOpen()
 * after freeze() to model the server finally noticing (its keepalive firing).
 */

export type ProxyMode = 'forward' | 'freeze' | 'refuse';

export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1 (the same one across refuse/resume). */
  readonly port: number;
  /** The mode new connections get. */
  readonly mode: ProxyMode;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  uri(database: string): string;
  /** Where new connections go; set it to fail over to another server at the "same address". */
  target: { host: string; port: number };
  /** Client connections open right now, frozen ones included. */
  connections(): number;
  /** Resets every open connection, both sides, like a network reset. New connections keep working. */
  drop(): void;
  /** Stops every byte on existing and new connections, keeping every socket open. */
  freeze(): void;
  /** Closes the server side of every existing connection; the client side stays open and silent. New connections are frozen. */
  halfOpen(): void;
  /** Stops listening (new attempts get ECONNREFUSED) and drops existing connections. */
  refuse(): void;
  /**
   * Back to forwarding, for new connections only (frozen ones stay frozen).
   * After refuse() it listens again on the same port; the promise resolves when
   * it does (and rejects if the port stays taken). Not awaiting it is safe.
   */
  resume(): Promise<void>;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** One client connection and, unless it was frozen from the start, its connection to the server. */
interface Pair {
  client: net.Socket;
  server: net.Socket | undefined;
  frozen: boolean;
  clientOpen: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }, options: { port?: number } = {}): Promise<TcpProxy> {
  const proxy = new ControlledProxy(target);
  await proxy.listen(options.port ?? 0);
  return proxy;
}

const LISTEN_RETRY_MS = 50;
// About 3 s: enough to outlast a brief holder of the port (another process handed it as an
// ephemeral port), short enough to fail a test clearly if it stays taken.
const LISTEN_ATTEMPTS = 60;

class ControlledProxy implements TcpProxy {
  target: { host: string; port: number };
  port = 0;
  mode: ProxyMode = 'forward';
  private readonly pairs = new Set<Pair>();
  private server: net.Server | undefined;
  /** The relisten in progress, so that concurrent resume() calls share it. */
  private listening: Promise<void> | undefined;
  private closed = false;

  constructor(target: { host: string; port: number }) {
    this.target = { ...target };
  }

  uri(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  connections(): number {
    let open = 0;
    for (const pair of this.pairs) if (pair.clientOpen) open++;
    return open;
  }

  drop(): void {
    for (const pair of [...this.pairs]) this.destroyPair(pair);
  }

  freeze(): void {
    this.mode = 'freeze';
    for (const pair of this.pairs) this.freezePair(pair);
    void this.ensureListening();
  }

  halfOpen(): void {
    this.mode = 'freeze';
    for (const pair of this.pairs) {
      this.freezePair(pair);
      // The backend sees its client disconnect; the client hears nothing.
      pair.server?.destroy();
    }
    void this.ensureListening();
  }

  refuse(): void {
    this.mode = 'refuse';
    // Closing the handle closes the listening socket synchronously, so the very
    // next connection attempt is refused by the kernel.
    this.server?.close();
    this.server = undefined;
    this.drop();
  }

  resume(): Promise<void> {
    this.mode = 'forward';
    return this.ensureListening();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.mode = 'refuse';
    const server = this.server;
    this.server = undefined;
    this.drop();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens on `port` (0: any free one), retrying briefly while it is taken. */
  async listen(port: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      // pauseOnConnect: an accepted socket reads nothing until we decide whether
      // it forwards, so a connection accepted while frozen never consumes a byte.
      const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port, host: '127.0.0.1' }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' || attempt >= LISTEN_ATTEMPTS) {
          throw new Error(`tcp-proxy: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, LISTEN_RETRY_MS));
        continue;
      }
      // A listening server can still emit errors (e.g. EMFILE on accept); never let them crash the test.
      server.on('error', () => {});
      this.server = server;
      this.port = (server.address() as net.AddressInfo).port;
      return;
    }
  }

  /** Listens again on the same port if refuse() closed the listener and the mode wants one. */
  private ensureListening(): Promise<void> {
    if (this.server || this.closed) return Promise.resolve();
    this.listening ??= this.listen(this.port)
      .then(() => {
        // refuse() or close() may have been called while we were retrying.
        if (this.mode === 'refuse' || this.closed) {
          this.server?.close();
          this.server = undefined;
        }
      })
      .finally(() => (this.listening = undefined));
    const listening = this.listening;
    // Handled here so that callers who don't await (freeze, halfOpen) cannot
    // cause an unhandled rejection; those who await still see the error.
    listening.catch(() => {});
    return listening;
  }

  private accept(client: net.Socket): void {
    // Accepted in the same tick as refuse(): treat it as if it had been refused.
    if (this.mode === 'refuse') {
      client.on('error', () => {});
      reset(client);
      return;
    }
    const pair: Pair = { client, server: undefined, frozen: false, clientOpen: true };
    this.pairs.add(pair);
    client.setNoDelay(true);
    client.on('error', () => {});
    client.once('close', () => {
      pair.clientOpen = false;
      // A frozen network does not carry the client's FIN/RST to the server.
      if (!pair.frozen) this.destroyPair(pair);
      else if (!pair.server || pair.server.destroyed) this.pairs.delete(pair);
    });

    if (this.mode !== 'forward') {
      // Accepted, then silent: no server connection, no bytes read.
      pair.frozen = true;
      return;
    }

    const server = net.connect({ host: this.target.host, port: this.target.port });
    pair.server = server;
    server.setNoDelay(true);
    server.on('error', () => {});
    server.once('close', () => {
      if (!pair.frozen) this.destroyPair(pair);
      else if (!pair.clientOpen) this.pairs.delete(pair);
    });
    // pipe() gives backpressure both ways; unpiping on freeze stops the flow.
    // Client bytes that arrive before the server connection is up are buffered by the socket.
    client.pipe(server);
    server.pipe(client);
  }

  private freezePair(pair: Pair): void {
    if (pair.frozen) return;
    pair.frozen = true;
    // Stop reading on both sides: data stays in kernel buffers (then the
    // peers' windows fill), exactly as if the path between them had stalled.
    pair.client.unpipe();
    pair.client.pause();
    if (pair.server) {
      pair.server.unpipe();
      pair.server.pause();
    }
  }

  private destroyPair(pair: Pair): void {
    this.pairs.delete(pair);
    reset(pair.client);
    if (pair.server) reset(pair.server);
  }
}

/** Destroys a socket with an RST when it is connected (a network reset), else just destroys it. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
