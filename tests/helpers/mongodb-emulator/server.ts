/**
 * Sockets: accepting connections, reading messages, answering in order per
 * connection, and the faults a test asks for (a restart keeps data and
 * history, like a mongod's files; a blip only cuts connections).
 */
import net from 'node:net';
import { encodeDocument } from './bson-raw.js';
import { errorReply, runCommand } from './commands/index.js';
import type { EmulatorState } from './state.js';
import type { Doc } from './storage.js';
import { encodeMsgReply, encodeOpReply, MessageReader, parseRequest, type Request } from './wire.js';

export class EmulatorServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private closing = false;

  constructor(private readonly state: EmulatorState) {}

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.accept(socket));
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.server = server;
        const addr = server.address() as net.AddressInfo;
        this.state.port = addr.port;
        resolve(addr.port);
      });
    });
  }

  /** Stops listening and cuts every connection. */
  async close(graceful = false): Promise<void> {
    const server = this.server;
    this.server = null;
    this.closing = true;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    this.dropAllConnections(graceful);
    await closed;
  }

  /**
   * Resets (RST) every connection by default, as a killed server or a lost
   * network does; `graceful` closes them (FIN) like a clean shutdown. With
   * FIN, driver 7.8's monitor can send its next hello on a connection whose
   * close it has not processed yet and then wait connectTimeoutMS (30 s) for
   * it: a real race, but one that makes restart tests slow, so it is opt-in.
   */
  dropAllConnections(graceful = false): void {
    for (const s of this.sockets) {
      if (graceful) s.destroy();
      else s.resetAndDestroy();
    }
    this.sockets.clear();
    // Awaiting getMores see their connection closed and end now.
    this.state.log.wakeAll();
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private accept(socket: net.Socket): void {
    // A connection that raced a close is refused, or close() would wait for it.
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const connectionId = this.state.nextConnectionId++;
    const reader = new MessageReader();
    let closed = false;
    let queue: Promise<void> = Promise.resolve();
    const remote = `${socket.remoteAddress ?? '127.0.0.1'}:${socket.remotePort ?? 0}`;
    const ctxBase = { state: this.state, connectionId, remote, closed: () => closed };
    const onGone = () => {
      closed = true;
      this.sockets.delete(socket);
    };
    socket.on('close', onGone);
    socket.on('error', onGone);
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const msg of messages) {
        // One at a time per connection, as a server answers a connection's requests in order.
        queue = queue.then(() => this.handle(msg, socket, ctxBase, () => closed));
      }
    });
  }

  private async handle(msg: Buffer, socket: net.Socket, base: { state: EmulatorState; connectionId: number; remote: string; closed: () => boolean }, isClosed: () => boolean): Promise<void> {
    if (isClosed()) return;
    let req: Request;
    try {
      req = parseRequest(msg);
    } catch (e) {
      if (process.env.EMULATOR_DEBUG) console.error('[mongodb-emulator] bad message', e);
      socket.destroy();
      return;
    }
    let reply: Doc;
    let db: string;
    let cmd: Doc;
    let sequences = new Map<string, Buffer[]>();
    if (req.kind === 'msg') {
      cmd = req.body;
      db = typeof cmd.$db === 'string' ? cmd.$db : 'admin';
      sequences = req.sequences;
    } else {
      cmd = req.query;
      db = req.collection.endsWith('.$cmd') ? req.collection.slice(0, -5) : '';
    }
    try {
      if (req.kind === 'query' && !db) {
        reply = errorReply(new Error('OP_QUERY is only supported for commands (<db>.$cmd)'));
      } else {
        reply = await runCommand(cmd, { ...base, db, sequences });
      }
    } catch (e) {
      reply = errorReply(e);
    }
    if (isClosed() || socket.destroyed) return;
    if (req.kind === 'msg' && req.moreToCome) return; // the client asked for no reply (w: 0)
    let body: Buffer;
    try {
      body = encodeDocument(reply);
    } catch (e) {
      body = encodeDocument(errorReply(e));
    }
    socket.write(req.kind === 'msg' ? encodeMsgReply(req.requestId, body) : encodeOpReply(req.requestId, body));
  }
}
