import { createServer, type Server, type Socket } from 'node:net';
import type { EmbeddedDatabase } from '../backends/pglite.js';
import { quoteIdent } from '../identifiers.js';
import type { Logger } from '../logger.js';
import type { ModelCallHost } from '../backends/pglite.js';
import { ChannelRouter, listenStatements, type ListenStatement } from './channel-router.js';
import { MODEL_CALL_SQLSTATE, MODEL_CALL_TEXT, type ModelCall, parseModelCall, rerunnable } from './model-call-error.js';
import { resumeWaitSql, WAIT_RERUN_MS, WAIT_SQLSTATE } from './wait-rerun.js';
import {
  CANCEL_REQUEST,
  GSSENC_REQUEST,
  notificationResponse,
  readBackend,
  simpleQuery,
  errorResponse,
  splitFrontend,
  SSL_REQUEST,
  sqlOf,
  startupMessage,
  startupParameters,
  untypedCode,
  type FrontendMessage,
} from './wire-protocol.js';

export interface WireServer {
  host: string;
  port: number;
  /** postgres://… to give psql or any PostgreSQL client. */
  uri: string;
  close(): Promise<void>;
}

const QUERY = 0x51;
const SYNC = 0x53;
const FLUSH = 0x48;
const TERMINATE = 0x58;
const EXTENDED = new Set([0x50, 0x42, 0x44, 0x45, 0x43]); // Parse, Bind, Describe, Execute, Close
const NOTIFICATION = 0x41;
const WRITE_TAG = /^(INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b/;
const MAX_CALLS_PER_STATEMENT = 1000;

/**
 * A PostgreSQL endpoint for the embedded database, so that psql, BI tools and
 * any driver can use it. Each client's messages are handed to PGlite's single
 * backend in turns (SharedSession): a simple query, or an extended-protocol
 * batch up to Sync, is one turn, and a client inside a transaction block keeps
 * the session until the block ends. On the way it does what dblink and NOTIFY
 * do on a server:
 * - a statement that raises SDM01 (a model call not yet answered) is answered
 *   by the host and run again, from a savepoint inside a transaction block;
 * - notifications go to whoever listens on their channel: this process's
 *   listeners (the sidecar), and the clients that said LISTEN (channel-router.ts),
 *   not simply to the client whose statement sent them; a committed write wakes
 *   the sidecar;
 * - a client that logs in as another role than postgres gets that role's
 *   privileges for its turns (SET SESSION AUTHORIZATION): the same answers as
 *   on a server, though not a security boundary (anyone who can reach the port
 *   can log in as postgres; bind it to 127.0.0.1, the default).
 */
export async function serveEmbedded(db: EmbeddedDatabase, options: { host?: string; port?: number; logger: Logger }): Promise<WireServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const router = new ChannelRouter<WireClient>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new WireClient(db, socket, router, options.logger);
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
  return { host, port, uri, close };
}

interface TurnOutcome {
  /** The DETAIL of a wait_for's SDW01: run the turn's statements again after a moment. */
  resumeWait?: string;
}

class WireClient {
  readonly #owner = Symbol('wire client');
  #buffer = Buffer.alloc(0);
  #started = false;
  #pending: FrontendMessage[] = [];
  /** Messages are handled one after another, in order. */
  #chain: Promise<void> = Promise.resolve();
  #holding = false;
  #closed = false;
  /** The role the client logged in as, when not postgres (the session's own role). */
  #role: string | undefined;
  /** Inside a turn, notifications for this client wait until its answer is written. */
  #inTurn = false;
  #outbox: Buffer[] = [];

  constructor(
    private readonly db: EmbeddedDatabase,
    private readonly socket: Socket,
    private readonly router: ChannelRouter<WireClient>,
    private readonly logger: Logger,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#received(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.#closed = true;
      this.router.drop(this);
      this.#chain = this.#chain.then(() => this.#abandon());
    });
  }

  /** A notification on a channel this client listens on. */
  deliver(message: Buffer): void {
    if (this.#closed) return;
    if (this.#inTurn) this.#outbox.push(message);
    else this.socket.write(message);
  }

  #received(chunk: Buffer): void {
    const { messages, rest, started } = splitFrontend(Buffer.concat([this.#buffer, chunk]), this.#started);
    this.#buffer = Buffer.from(rest);
    this.#started = started;
    for (const message of messages) {
      this.#chain = this.#chain.then(() => this.#handle(message)).catch((error: unknown) => this.#fail(error));
    }
  }

  async #handle(message: FrontendMessage): Promise<void> {
    if (this.#closed) return;
    if (message.type === 0) {
      const code = untypedCode(message);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.socket.write('N'); // no encryption on a local endpoint
        return;
      }
      if (code === CANCEL_REQUEST) {
        this.socket.end(); // not supported; the client goes on waiting for its statement
        return;
      }
      return this.#startup(message);
    }
    if (message.type === TERMINATE) {
      this.socket.end();
      return;
    }
    if (EXTENDED.has(message.type)) {
      this.#pending.push(message);
      return;
    }
    const batch = [...this.#pending, message];
    this.#pending = [];
    if (message.type === FLUSH) return this.#turn(batch.slice(0, -1), true);
    return this.#turn(batch);
  }

  /** Logs the client in: as postgres, or as another role that exists and may log in. */
  async #startup(message: FrontendMessage): Promise<void> {
    const parameters = startupParameters(message);
    const user = parameters.user ?? 'postgres';
    if (user !== 'postgres') {
      const role = await this.db.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1', [user]);
      const refusal = !role.rows[0] ? `role "${user}" does not exist` : !role.rows[0].rolcanlogin ? `role "${user}" is not permitted to log in` : undefined;
      if (refusal) {
        this.socket.end(errorResponse('FATAL', '28000', refusal));
        this.#closed = true;
        return;
      }
    }
    // PGlite would make the startup's user the session's user, for everyone
    // after: the session stays postgres's, and the client's role is set per turn.
    await this.#turn([startupMessage({ ...parameters, user: 'postgres' })]);
    if (user !== 'postgres') this.#role = user;
  }

  /**
   * One turn on the session: the messages, their answer to the client. A
   * superduper.wait_for() with changes pending (SDW01) gives the session back,
   * lets the sidecar work, and takes another turn to run them again.
   */
  async #turn(messages: FrontendMessage[], flushOnly = false): Promise<void> {
    for (let resume: string | undefined; ; ) {
      await this.db.session.acquire(this.#owner);
      this.#inTurn = true;
      let outcome: TurnOutcome;
      try {
        outcome = await this.#turnHeld(messages, flushOnly, resume);
      } finally {
        this.#inTurn = false;
        const outbox = this.#outbox.splice(0);
        if (outbox.length > 0 && !this.#closed) this.socket.write(Buffer.concat(outbox));
      }
      if (outcome.resumeWait === undefined || this.#closed) return;
      resume = outcome.resumeWait;
      await new Promise((resolve) => setTimeout(resolve, WAIT_RERUN_MS));
    }
  }

  async #turnHeld(messages: FrontendMessage[], flushOnly: boolean, resumeWait?: string): Promise<TurnOutcome> {
    const { db } = this;
    if (!this.#holding && this.#role) await this.#execute(simpleQuery(`SET SESSION AUTHORIZATION ${quoteIdent(this.#role)}`));
    this.#holding = true;
    const last = messages.at(-1);
    const completes = !flushOnly && (last?.type === QUERY || last?.type === SYNC);
    const sql = messages.map(sqlOf).join('\n');
    const host = db.modelCallHost;
    const inBlock = db.pglite.isInTransaction();
    let fromSavepoint = host !== undefined && completes && inBlock && MODEL_CALL_TEXT.test(sql);
    let canRerun = host !== undefined && completes && !inBlock && sql !== '' && rerunnable(sql);

    for (let calls = 0; ; calls++) {
      if (fromSavepoint) await this.#execute(simpleQuery('SAVEPOINT superduper_model_call'));
      if (resumeWait !== undefined) await this.#execute(simpleQuery(resumeWaitSql(resumeWait)));
      const answer = Buffer.concat(await this.#executeAll(messages));
      // Used by wait_for, or by nobody if the statement failed before it.
      if (resumeWait !== undefined) await this.#execute(simpleQuery(resumeWaitSql('')));
      // Notifications are routed below, to whoever listens; none goes through as is.
      const { summary, forward } = readBackend(answer, (type) => type !== NOTIFICATION);
      const callError = summary.errors.find((error) => error.C === MODEL_CALL_SQLSTATE);
      const call = callError?.D ? parseModelCall(callError.D) : undefined;
      if (call && host && (fromSavepoint || canRerun) && calls < MAX_CALLS_PER_STATEMENT) {
        if (fromSavepoint) await this.#execute(simpleQuery('ROLLBACK TO SAVEPOINT superduper_model_call; RELEASE SAVEPOINT superduper_model_call'));
        if (!(await this.#answer(call, host))) {
          // Not answered: run it once more, plainly, so that the client gets the
          // statement's own error (and, in a block, the block aborts as it should).
          fromSavepoint = false;
          canRerun = false;
        }
        continue;
      }
      if (fromSavepoint && summary.errors.length === 0) await this.#execute(simpleQuery('RELEASE SAVEPOINT superduper_model_call'));
      // A wait_for with changes pending, outside a block: nothing reaches the
      // client yet; the statement runs again in a later turn (see #turn).
      const waitError = summary.errors.find((error) => error.C === WAIT_SQLSTATE);
      if (waitError?.D && completes && !inBlock && summary.status === 'I' && rerunnable(sql)) {
        this.#release();
        return { resumeWait: waitError.D };
      }

      const listens = summary.tags.filter((tag) => tag === 'LISTEN' || tag === 'UNLISTEN').length;
      if (listens > 0) await this.#followListens(listenStatements(sql).slice(0, listens));
      for (const note of summary.notifications) {
        if (db.listensTo(note.channel)) db.notify(note.channel, note.payload);
        for (const client of this.router.listeners(note.channel)) client.deliver(notificationResponse(note));
      }
      // Triggers cannot wake the sidecar here (see Worker): a committed write does.
      if (summary.status === 'I' && summary.tags.some((tag) => WRITE_TAG.test(tag))) db.notify('superduper', 'changed');
      if (forward.length > 0 && !this.#closed) this.socket.write(forward);
      if (summary.status === 'I') this.#release();
      return {};
    }
  }

  /**
   * Records what this client listens on. An UNLISTEN stops the one session
   * listening for everyone, so the channels other clients or this process still
   * listen on are listened to again. (A LISTEN inside a block that then rolls
   * back is still recorded: the client hears a channel it did not keep.)
   */
  async #followListens(statements: ListenStatement[]): Promise<void> {
    let unlistened = false;
    for (const statement of statements) {
      if (statement.listen) this.router.listen(this, statement.channel);
      else {
        this.router.unlisten(this, statement.channel);
        unlistened = true;
      }
    }
    if (!unlistened) return;
    const wanted = new Set([...this.router.channels(), ...this.db.listenedChannels()]);
    for (const channel of wanted) await this.#execute(simpleQuery(`LISTEN ${quoteIdent(channel)}`));
  }

  /**
   * Has the host answer a model call, as the session's own role (the host reads
   * superduper's tables, which the client's role may not). False if it failed.
   */
  async #answer(call: ModelCall, host: ModelCallHost): Promise<boolean> {
    try {
      if (this.#role) await this.#execute(simpleQuery('SET SESSION AUTHORIZATION postgres'));
      await this.db.session.runAs(this.#owner, () => host(call, this.db));
      return true;
    } catch (error) {
      this.logger.warn({ error: (error as Error).message, model: call.model }, 'could not answer a model call from SQL');
      return false;
    } finally {
      if (this.#role) await this.#execute(simpleQuery(`SET SESSION AUTHORIZATION ${quoteIdent(this.#role)}`));
    }
  }

  async #executeAll(messages: FrontendMessage[]): Promise<Uint8Array[]> {
    const answers: Uint8Array[] = [];
    for (const message of messages) answers.push(await this.#execute(message.bytes));
    return answers;
  }

  #execute(bytes: Uint8Array): Promise<Uint8Array> {
    return this.db.pglite.runExclusive(() => this.db.pglite.execProtocolRaw(bytes));
  }

  #release(): void {
    if (!this.#holding) return;
    this.#holding = false;
    if (!this.#role) {
      this.db.session.release(this.#owner);
      return;
    }
    // Back to the session's own role before anyone else's turn (PGlite ignores
    // RESET SESSION AUTHORIZATION: its session has no authenticated user to go back to).
    void this.#execute(simpleQuery('SET SESSION AUTHORIZATION postgres')).finally(() => this.db.session.release(this.#owner));
  }

  /** A client gone inside a transaction block must not leave it open for everyone else. */
  async #abandon(): Promise<void> {
    if (!this.#holding) return;
    try {
      if (this.db.pglite.isInTransaction()) await this.#execute(simpleQuery('ROLLBACK'));
    } finally {
      this.#release();
    }
  }

  #fail(error: unknown): void {
    this.logger.warn({ error: (error as Error).message }, 'embedded wire client failed');
    this.#closed = true;
    void this.#abandon()
      .catch(() => this.#release())
      .finally(() => this.socket.destroy());
  }
}
