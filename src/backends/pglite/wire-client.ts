import { errorFields } from '../../errors.js';
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { EmbeddedDatabase, ModelCallHost } from './driver.js';
import { quoteIdent } from '../../identifiers.js';
import type { Logger } from '../../logger.js';
import { ChannelRouter, listenStatements, type ListenStatement } from './channel-router.js';
import { MODEL_CALL_SQLSTATE, type ModelCall, parseModelCall, rerunnable } from './model-call-error.js';
import { runAnsweringModelCalls } from './model-call-rerun.js';
import { changesSettings, startupSettings, type Settings } from './session-settings.js';
import { resumeWaitSql, WAIT_RERUN_MS, WAIT_SQLSTATE } from './wait-rerun.js';
import { copyFail, copyFromStdin, copyInResponse, MAX_COPY_BYTES, withoutCopyInResponse, type CopyFromStdin, type CopyIn } from './wire-copy.js';
import {
  authenticationOk,
  backendKeyData,
  backendMessage,
  CANCEL_REQUEST,
  cancelTarget,
  errorResponse,
  GSSENC_REQUEST,
  notificationResponse,
  parameterStatus,
  ProtocolViolation,
  readBackend,
  readyForQuery,
  simpleQuery,
  splitFrontend,
  SSL_REQUEST,
  sqlOf,
  startupParameters,
  untypedCode,
  type FrontendMessage,
} from './wire-protocol.js';
import { ClientStatements, releasesAllStatements } from './wire-statements.js';
import { NOTIFY } from '../../generated/constants.js';


/**
 * One client of the embedded endpoint (wire-server.ts): its messages, handed to
 * the one PGlite session in turns, and what a server would keep for it (its
 * statements, settings, COPY, cancel key, notifications, role).
 */

const QUERY = 0x51;
const PARSE = 0x50;
const SYNC = 0x53;
const FLUSH = 0x48;
const TERMINATE = 0x58;
const COPY_DATA = 0x64;
const COPY_DONE = 0x63;
const COPY_FAIL = 0x66;
const FUNCTION_CALL = 0x46;
/** Not a protocol message: a COPY FROM STDIN with its data and its end, for PGlite in one call. */
const COPY_BATCH = -1;
const PASSWORD = 0x70;
const EXTENDED = new Set([0x50, 0x42, 0x44, 0x45, 0x43]); // Parse, Bind, Describe, Execute, Close
const NOTIFICATION = 0x41;
const WRITE_TAG = /^(INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b/;
/** The parameters a server reports at startup (and whenever they change). */
const REPORTED = [
  'application_name', 'client_encoding', 'DateStyle', 'default_transaction_read_only', 'in_hot_standby', 'integer_datetimes',
  'IntervalStyle', 'server_encoding', 'server_version', 'standard_conforming_strings', 'TimeZone',
];

/** Clients by the key they were given at startup, for cancel requests (which come on a new connection). */
const byKey = new Map<number, WireClient>();
let clients = 0;


/**
 * What a login needs to know, as last read: the roles, and the parameters a
 * server reports. While another client holds the session (inside a block) a
 * client logs in with these instead of waiting for a turn, so that new
 * connections do not hang behind an open transaction; its settings are then
 * checked at its first turn.
 */
export interface StartupFacts {
  roles: Map<string, { canLogin: boolean; superuser: boolean }>;
  reported: Map<string, string>;
}

interface TurnOutcome {
  /** The DETAIL of a wait_for's SDW01: run the turn's statements again after a moment. */
  resumeWait?: string;
}

/** Why a client's statement did not get the session: canceled, or waited too long. */
class NoTurn extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export class WireClient {
  readonly #owner = Symbol('wire client');
  readonly #pid: number;
  readonly #secret = randomInt(1, 2 ** 31 - 1);
  readonly #statements: ClientStatements;
  #buffer = Buffer.alloc(0);
  #started = false;
  #loggedIn = false;
  #pending: FrontendMessage[] = [];
  /** Messages are handled one after another, in order. */
  #chain: Promise<void> = Promise.resolve();
  #holding = false;
  #closed = false;
  /** The role the client logged in as, when not postgres (the session's own role). */
  #role: string | undefined;
  #user = 'postgres';
  /** Inside a turn, notifications for this client wait until its answer is written. */
  #inTurn = false;
  #outbox: Buffer[] = [];
  /** Its settings as given at startup, and as they are now (worn by the session during its turns). */
  #startupSettings: Settings = new Map();
  #settings: Settings = new Map();
  /** Its statements since it took the session may have changed settings: look when it gives it back. */
  #settingsMayHaveChanged = false;
  /** Logged in while the session was busy: its startup settings are checked at its first turn. */
  #settingsUnchecked = false;
  /** The reported parameters as this client was last told them (a SET of one is reported, as by a server). */
  #reported = new Map<string, string>();
  /** A COPY FROM STDIN under way. */
  #copy: CopyIn | undefined;
  /** While its statement waits for the session: a cancel request or the wait timeout aborts the wait. */
  #waiting: AbortController | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #address: string;

  constructor(
    private readonly db: EmbeddedDatabase,
    private readonly socket: Socket,
    private readonly router: ChannelRouter<WireClient>,
    private readonly logger: Logger,
    private readonly limits: { idleInTransactionMs: number; waitMs: number },
    private readonly known: StartupFacts,
  ) {
    const id = ++clients;
    this.#pid = 100_000 + id;
    this.#statements = new ClientStatements(`c${id}.`);
    this.#address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    byKey.set(this.#pid, this);
    db.session.label(this.#owner, () => this.describe());
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#received(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.#closed = true;
      clearTimeout(this.#idleTimer);
      this.#waiting?.abort(new NoTurn('08006', 'the client disconnected'));
      this.router.drop(this);
      byKey.delete(this.#pid);
      this.#chain = this.#chain
        .then(() => this.#abandon())
        .catch((error: unknown) => this.logger.warn({ client: this.describe(), err: error }, 'could not clean up after a client of the embedded endpoint'))
        .finally(() => db.session.label(this.#owner, undefined));
    });
  }

  /** This client, for log lines and for the clients waiting behind it. */
  describe(): string {
    const application = this.#settings.get('application_name');
    return `client ${this.#address}${application ? ` (${application})` : ''} as ${this.#user}`;
  }

  /** A notification on a channel this client listens on. */
  deliver(message: Buffer): void {
    if (this.#closed) return;
    if (this.#inTurn) this.#outbox.push(message);
    else this.socket.write(message);
  }

  /** A cancel request for this client: its statement leaves the line for the session. */
  cancel(): void {
    this.#waiting?.abort(new NoTurn('57014', 'canceling statement due to user request'));
  }

  #received(chunk: Buffer): void {
    clearTimeout(this.#idleTimer);
    let split;
    try {
      split = splitFrontend(Buffer.concat([this.#buffer, chunk]), this.#started);
    } catch (error) {
      this.#buffer = Buffer.alloc(0);
      this.#chain = this.#chain.then(() => this.#violation(error as Error)).catch((failure: unknown) => this.#fail(failure));
      return;
    }
    this.#buffer = Buffer.from(split.rest);
    this.#started = split.started;
    for (const message of split.messages) {
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
        const target = cancelTarget(message);
        const client = target && byKey.get(target.pid);
        if (client && client.#secret === target.secret) client.cancel();
        this.socket.end(); // as a server does: no answer on the cancel connection
        return;
      }
      return this.#startup(message);
    }
    if (!this.#loggedIn) throw new ProtocolViolation('a message before the startup finished');
    if (this.#copy) return this.#copyMessage(message);
    switch (message.type) {
      case TERMINATE:
        this.socket.end();
        return;
      case FUNCTION_CALL:
        throw new ProtocolViolation('fastpath function calls are not supported by the embedded endpoint');
      case PASSWORD:
        throw new ProtocolViolation('unexpected password message: the embedded endpoint asks for none');
      case COPY_DATA:
      case COPY_DONE:
      case COPY_FAIL:
        return; // after a COPY that failed, as a server does: ignored until the next command
    }
    if (EXTENDED.has(message.type)) {
      if (message.type === PARSE && copyFromStdin(sqlOf(message))) {
        throw new ProtocolViolation('COPY FROM STDIN through the extended protocol is not supported by the embedded endpoint: send it as a simple query');
      }
      this.#pending.push(message);
      return;
    }
    if (message.type === QUERY) {
      const sql = sqlOf(message);
      const copy = copyFromStdin(sql);
      if (copy?.alone) return this.#startCopy(message, copy);
      if (copy) {
        return this.#refuse('0A000', 'on the embedded database COPY FROM STDIN must be sent as a statement of its own', 'Send the other statements separately.');
      }
      const releasing = releasesAllStatements(sql);
      if (releasing) return this.#deallocateAll(releasing);
    }
    const batch = [...this.#pending, message];
    this.#pending = [];
    if (message.type === FLUSH) return this.#turn(batch.slice(0, -1), true);
    return this.#turn(batch);
  }

  /**
   * Logs the client in: as postgres, or as another role that exists and may log
   * in. The startup message is not PGlite's (its session started once, for
   * everyone): its parameters become the client's settings, and the answer a
   * server gives (AuthenticationOk, the reported parameters, a cancel key,
   * ReadyForQuery) is made here. With the session free, the role and settings
   * are checked in a turn; while another client holds it, the login goes ahead
   * on what was last read (StartupFacts), and the settings are checked at the
   * client's first turn.
   */
  async #startup(message: FrontendMessage): Promise<void> {
    const parameters = startupParameters(message);
    const user = parameters.user ?? 'postgres';
    // A walsender (physical or logical replication) needs a server of its own.
    if (parameters.replication !== undefined && !['false', 'off', 'no', '0'].includes(parameters.replication.toLowerCase())) {
      this.socket.end(errorResponse('FATAL', '0A000', 'the embedded endpoint does not take replication connections', 'Replicate from a PostgreSQL server.'));
      this.#closed = true;
      return;
    }
    const settings = startupSettings(parameters);
    const busy = this.db.session.holder() !== undefined && this.known.roles.has(user);
    const checked = busy ? undefined : await this.#onTurn(() => this.#checkLogin(user, settings), false);
    const role = this.known.roles.get(user);
    const refusal =
      checked && 'refusal' in checked
        ? checked.refusal
        : !role
          ? (['28000', `role "${user}" does not exist`] as const)
          : !role.canLogin
            ? (['28000', `role "${user}" is not permitted to log in`] as const)
            : undefined;
    if (refusal || !role) {
      this.socket.end(errorResponse('FATAL', refusal?.[0] ?? '28000', refusal?.[1] ?? `role "${user}" does not exist`));
      this.#closed = true;
      return;
    }
    // Unchecked settings (a busy session) are reported as given; a server would report them normalized.
    const reported = checked && 'reported' in checked ? checked.reported : new Map([...this.known.reported, ...[...settings].filter(([name]) => REPORTED.includes(name))]);
    this.#user = user;
    if (user !== 'postgres') this.#role = user;
    this.#startupSettings = settings;
    this.#settings = settings;
    this.#settingsUnchecked = busy;
    this.#reported = reported;
    this.#loggedIn = true;
    this.socket.write(
      Buffer.concat([
        authenticationOk(),
        ...[...reported].map(([name, value]) => parameterStatus(name, value)),
        parameterStatus('is_superuser', role.superuser ? 'on' : 'off'),
        parameterStatus('session_authorization', user),
        backendKeyData(this.#pid, this.#secret),
        readyForQuery('I'),
      ]),
    );
  }

  /**
   * In a turn: reads the roles and the defaults of the reported parameters
   * (StartupFacts), then, with the client's settings worn, the values to report
   * to it, or the error a server gives for a bad setting.
   */
  async #checkLogin(user: string, settings: Settings): Promise<{ refusal: readonly [string, string] } | { reported: Map<string, string> } | undefined> {
    const roles = await this.db.pglite.query<{ rolname: string; rolcanlogin: boolean; rolsuper: boolean }>(
      'SELECT rolname, rolcanlogin, rolsuper FROM pg_catalog.pg_roles',
    );
    this.known.roles = new Map(roles.rows.map((row) => [row.rolname, { canLogin: row.rolcanlogin, superuser: row.rolsuper }]));
    const defaults = await this.db.pglite.query<{ name: string; reset_val: string }>(
      'SELECT name, reset_val FROM pg_catalog.pg_settings WHERE name = ANY ($1::text[])',
      [REPORTED],
    );
    this.known.reported = new Map(defaults.rows.map((row) => [row.name, row.reset_val]));
    if (!this.known.roles.get(user)?.canLogin) return undefined; // refused by the caller
    try {
      await this.db.settings.wear(settings);
    } catch (error) {
      // A bad value in the startup packet: the server's own words, as FATAL.
      await this.db.settings.capture().catch(() => this.db.settings.forget());
      const { code, message } = error as { code?: string; message: string };
      return { refusal: [code ?? '22023', message] };
    }
    const values = await this.db.pglite.query<{ name: string; setting: string }>(
      'SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY ($1::text[])',
      [[...settings.keys()]],
    );
    // As the session has them: normalized (DateStyle German is "German, DMY").
    return { reported: new Map([...this.known.reported, ...values.rows.filter((row) => REPORTED.includes(row.name)).map((row) => [row.name, row.setting] as const)]) };
  }

  /**
   * Runs fn in a turn of this client's on the session (the session wearing its
   * settings, unless `wear` is false), without answering the client anything.
   */
  async #onTurn<T>(fn: () => Promise<T>, wear = true): Promise<T> {
    const held = this.#holding;
    if (!held) await this.db.session.acquire(this.#owner);
    try {
      if (!held && wear) await this.db.settings.wear(this.#settings);
      return await fn();
    } finally {
      if (!held) this.db.session.release(this.#owner);
    }
  }

  /**
   * One turn on the session: the messages, their answer to the client. A
   * superduper.wait_for() with changes pending (SDW01) gives the session back,
   * lets the sidecar work, and takes another turn to run them again.
   */
  async #turn(messages: FrontendMessage[], flushOnly = false): Promise<void> {
    const completes = !flushOnly && [QUERY, SYNC, COPY_BATCH].includes(messages.at(-1)?.type ?? 0);
    for (let resume: string | undefined; ; ) {
      try {
        await this.#takeSession();
      } catch (error) {
        if (!(error instanceof NoTurn)) throw error;
        // Not run: as a server answers a canceled statement or a lock timeout.
        if (!this.#closed) {
          this.socket.write(Buffer.concat([errorResponse('ERROR', error.sqlstate, error.message, error.hint), ...(completes ? [readyForQuery('I')] : [])]));
        }
        return;
      }
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

  /** Takes the session for this client's turn, waiting in line; NoTurn if canceled or waited too long. */
  async #takeSession(): Promise<void> {
    if (this.#holding) return;
    // A free session is taken at once, without the machinery of waiting (the common case).
    if (!this.db.session.tryAcquire(this.#owner)) await this.#waitForSession();
    try {
      await this.db.settings.wear(this.#settings);
      if (this.#role) await this.#execute(simpleQuery(`SET SESSION AUTHORIZATION ${quoteIdent(this.#role)}`));
    } catch (error) {
      await this.db.settings.capture().catch(() => this.db.settings.forget());
      this.db.session.release(this.#owner);
      if (this.#settingsUnchecked) {
        // A bad value in its startup packet, found only now: what a server says at login.
        const { code, message } = error as { code?: string; message: string };
        throw new ProtocolViolation(message, code ?? '22023');
      }
      throw error;
    }
    this.#settingsUnchecked = false;
    this.#holding = true;
  }

  /** Waits in line for the session, until a cancel request or the wait timeout (NoTurn). */
  async #waitForSession(): Promise<void> {
    const waiting = new AbortController();
    this.#waiting = waiting;
    const timer =
      this.limits.waitMs > 0
        ? setTimeout(() => {
            const holder = this.db.session.holder();
            waiting.abort(
              new NoTurn(
                '55P03',
                `the embedded database is busy: ${holder?.who ?? 'another client'} has held its one session for ${Math.round((holder?.forMs ?? 0) / 1000)} s`,
                'A client inside a transaction block holds the embedded database until it commits or rolls back (one idle that long is disconnected: ' +
                  'npx superduper serve --idle-in-transaction-timeout). Keep transactions short, or use a PostgreSQL server for many concurrent clients.',
              ),
            );
          }, this.limits.waitMs)
        : undefined;
    try {
      await this.db.session.acquire(this.#owner, waiting.signal);
    } finally {
      clearTimeout(timer);
      this.#waiting = undefined;
    }
  }

  async #turnHeld(messages: FrontendMessage[], flushOnly: boolean, resumeWait?: string): Promise<TurnOutcome> {
    const { db } = this;
    const last = messages.at(-1);
    const completes = !flushOnly && (last?.type === QUERY || last?.type === SYNC);
    const sql = messages.map(sqlOf).join('\n');
    if (changesSettings(sql)) this.#settingsMayHaveChanged = true;
    const host = db.modelCallHost;
    const inBlock = db.pglite.isInTransaction();
    const { summary, forward } = await runAnsweringModelCalls({
      sql,
      inBlock,
      answerable: host !== undefined && completes && sql !== '',
      exec: (text) => this.#execute(simpleQuery(text)),
      run: async (again) => {
        if (resumeWait !== undefined) await this.#execute(simpleQuery(resumeWaitSql(resumeWait)));
        const answer = this.#statements.unscope(await this.#executeAll(messages, again || resumeWait !== undefined));
        // Used by wait_for, or by nobody if the statement failed before it.
        if (resumeWait !== undefined) await this.#execute(simpleQuery(resumeWaitSql('')));
        // Notifications are routed below, to whoever listens; none goes through as is.
        const read = readBackend(answer, (type) => type !== NOTIFICATION);
        const callError = read.summary.errors.find((error) => error.C === MODEL_CALL_SQLSTATE);
        return {
          outcome: read,
          call: callError?.D ? parseModelCall(callError.D) : undefined,
          failed: read.summary.errors.length > 0,
          leftBlockOpen: !inBlock && read.summary.status !== undefined && read.summary.status !== 'I',
        };
      },
      answer: (call) => this.#answer(call, host!),
    });
    // A wait_for with changes pending, outside a block (or in one the batch
    // began): nothing reaches the client yet; the statement runs again in a
    // later turn (see #turn).
    const waitError = summary.errors.find((error) => error.C === WAIT_SQLSTATE);
    if (waitError?.D && completes && !inBlock && rerunnable(sql)) {
      if (summary.status !== 'I') await this.#execute(simpleQuery('ROLLBACK'));
      await this.#release();
      return { resumeWait: waitError.D };
    }

    const listens = summary.tags.filter((tag) => tag === 'LISTEN' || tag === 'UNLISTEN').length;
    if (listens > 0) await this.#followListens(listenStatements(sql).slice(0, listens));
    for (const note of summary.notifications) {
      if (db.listensTo(note.channel)) db.notify(note.channel, note.payload);
      for (const client of this.router.listeners(note.channel)) client.deliver(notificationResponse(note));
    }
    // Triggers cannot wake the sidecar here (see Sidecar): a committed write does.
    if (summary.status === 'I' && summary.tags.some((tag) => WRITE_TAG.test(tag))) db.notify(NOTIFY.work.channel, NOTIFY.work.changed);
    const reports = changesSettings(sql) ? await this.#changedParameters() : [];
    if (forward.length > 0 && !this.#closed) this.socket.write(reports.length === 0 ? forward : beforeReadyForQuery(forward, reports));
    if (summary.status === 'I') await this.#release();
    else if (summary.status !== undefined) this.#watchIdle();
    return {};
  }

  /** ParameterStatus messages for the reported parameters the client's statements changed (PGlite sends none). */
  async #changedParameters(): Promise<Buffer[]> {
    const now = await this.db.pglite.query<{ name: string; setting: string }>(
      'SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY ($1::text[])',
      [REPORTED],
    );
    const changed = now.rows.filter((row) => this.#reported.get(row.name) !== row.setting);
    for (const row of changed) this.#reported.set(row.name, row.setting);
    return changed.map((row) => parameterStatus(row.name, row.setting));
  }

  /** A client left holding the session in a block, idle: after the limit, its transaction goes, and so does it. */
  #watchIdle(): void {
    clearTimeout(this.#idleTimer);
    if (this.limits.idleInTransactionMs <= 0) return;
    this.#idleTimer = setTimeout(() => {
      this.#chain = this.#chain.then(async () => {
        if (this.#closed || !this.#holding) return;
        this.logger.warn(
          { client: this.describe(), idleSeconds: this.limits.idleInTransactionMs / 1000 },
          'closed a client idle in a transaction: it held the embedded database, and the other clients waited',
        );
        this.socket.write(errorResponse('FATAL', '25P03', 'terminating connection due to idle-in-transaction timeout'));
        this.#closed = true;
        await this.#abandon();
        this.socket.end();
      }).catch((error: unknown) => this.#fail(error));
    }, this.limits.idleInTransactionMs);
    this.#idleTimer.unref();
  }

  /**
   * COPY ... FROM STDIN: the CopyInResponse now, the statement and its data to
   * PGlite at the end (see wire-copy.ts). A table that cannot be read (missing,
   * or not the role's) fails at once, as on a server: the COPY goes to PGlite
   * with a CopyFail behind it, for PGlite's own error.
   */
  async #startCopy(message: FrontendMessage, copy: CopyFromStdin): Promise<void> {
    const columns =
      copy.columns ??
      (await this.#onTurn(async () => {
        const found = await this.db.pglite
          .query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped',
            [copy.table],
          )
          .catch(() => undefined);
        return found?.rows[0]?.n;
      }));
    if (columns === undefined) {
      const whole: FrontendMessage = { type: COPY_BATCH, bytes: Buffer.concat([Buffer.from(message.bytes), copyFail('the table cannot be read')]) };
      return this.#turn([whole]);
    }
    this.#copy = { query: Buffer.from(message.bytes), messages: [], bytes: 0, tooLarge: false };
    this.socket.write(copyInResponse(copy.binary, columns));
  }

  async #copyMessage(message: FrontendMessage): Promise<void> {
    const copy = this.#copy!;
    if (message.type === FLUSH || message.type === SYNC) return; // ignored in copy mode, as by a server
    if (message.type === COPY_DATA) {
      copy.bytes += message.bytes.length;
      if (copy.bytes > MAX_COPY_BYTES) copy.tooLarge = true;
      if (!copy.tooLarge) copy.messages.push(Buffer.from(message.bytes));
      return;
    }
    if (message.type !== COPY_DONE && message.type !== COPY_FAIL) {
      throw new ProtocolViolation(`unexpected message type ${message.type} during COPY from stdin`);
    }
    this.#copy = undefined;
    const end = copy.tooLarge ? copyFail(`more than ${MAX_COPY_BYTES / 2 ** 20} MB of COPY data: the embedded endpoint holds a COPY in memory`) : Buffer.from(message.bytes);
    // The COPY, its data and its end in one call, as PGlite needs them.
    const whole: FrontendMessage = { type: COPY_BATCH, bytes: Buffer.concat([copy.query, ...(copy.tooLarge ? [] : copy.messages), end]) };
    await this.#turn([whole]);
  }

  /** DEALLOCATE ALL / DISCARD ALL: of this client's own statements (and, for DISCARD, its settings), not everyone's. */
  async #deallocateAll(command: 'DEALLOCATE ALL' | 'DISCARD ALL'): Promise<void> {
    const discard = command === 'DISCARD ALL';
    const reports = await this.#onTurn(async () => {
      for (const name of this.#statements.prepared()) await this.db.pglite.query(`DEALLOCATE ${quoteIdent(name)}`).catch(() => {});
      this.#statements.forgetAll();
      if (!discard) return [];
      this.#settings = this.#startupSettings;
      await this.db.settings.wear(this.#settings);
      return this.#changedParameters();
    });
    this.socket.write(Buffer.concat([backendMessage('C', Buffer.from(`${command}\0`)), ...reports, readyForQuery(this.#holding ? 'T' : 'I')]));
  }

  /** An error for the client's query, without running it. */
  #refuse(sqlstate: string, message: string, hint?: string): void {
    const status = this.#holding && this.db.pglite.isInTransaction() ? 'T' : 'I';
    this.socket.write(Buffer.concat([errorResponse('ERROR', sqlstate, message, hint), readyForQuery(status)]));
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
      this.logger.warn({ ...errorFields(error), model: call.model }, 'could not answer a model call from SQL');
      return false;
    } finally {
      if (this.#role) await this.#execute(simpleQuery(`SET SESSION AUTHORIZATION ${quoteIdent(this.#role)}`));
    }
  }

  /** Each message to PGlite, its names scoped to this client; the answers of silent ones dropped. */
  /** A batch of the client's messages, in one call to PGlite (see ClientStatements.plan). */
  async #executeAll(messages: FrontendMessage[], again: boolean): Promise<Buffer> {
    if (messages.length === 1 && messages[0]!.type === COPY_BATCH) return withoutCopyInResponse(Buffer.from(await this.#execute(messages[0]!.bytes)));
    const { first, batch } = this.#statements.plan(messages, again);
    for (const bytes of first) await this.#execute(bytes);
    if (batch.length === 0) return Buffer.alloc(0);
    const answer = await this.#execute(batch);
    return Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength);
  }

  #execute(bytes: Uint8Array): Promise<Uint8Array> {
    return this.db.pglite.runExclusive(() => this.db.pglite.execProtocolRaw(bytes));
  }

  /**
   * Gives the session back: the settings it changed kept as its own (merged over
   * its startup parameters, as a server's RESET restores those), the session's
   * own role again (PGlite ignores RESET SESSION AUTHORIZATION).
   */
  async #release(): Promise<void> {
    if (!this.#holding) return;
    this.#holding = false;
    clearTimeout(this.#idleTimer);
    try {
      if (this.#settingsMayHaveChanged) {
        this.#settingsMayHaveChanged = false;
        const captured = await this.db.settings.capture();
        const merged = new Map([...this.#startupSettings, ...captured]);
        await this.db.settings.wear(merged);
        this.#settings = merged;
      }
      if (this.#role) await this.#execute(simpleQuery('SET SESSION AUTHORIZATION postgres'));
    } finally {
      this.db.session.release(this.#owner);
    }
  }

  /**
   * A client gone: a transaction it left open is rolled back (it must not stay
   * open for everyone else), and its prepared statements go.
   */
  async #abandon(): Promise<void> {
    const prepared = this.#statements.prepared();
    if (!this.#holding && prepared.length === 0) return;
    // Closing (its transaction goes with it) or stopped: nothing to give back.
    if (!this.db.usable) return;
    if (!this.#holding) {
      await this.db.session.acquire(this.#owner);
      this.#holding = true;
    }
    try {
      if (this.db.pglite.isInTransaction()) await this.#execute(simpleQuery('ROLLBACK'));
      for (const name of prepared) await this.db.pglite.query(`DEALLOCATE ${quoteIdent(name)}`).catch(() => {});
      this.#statements.forgetAll();
    } finally {
      await this.#release();
    }
  }

  /** A broken protocol: the client is told (FATAL 08P01) and its connection ends; nothing reached PGlite. */
  async #violation(error: Error): Promise<void> {
    if (this.#closed) return;
    this.logger.warn({ client: this.describe(), error: error.message }, 'closed a client of the embedded endpoint that broke the protocol');
    this.socket.write(errorResponse('FATAL', (error as ProtocolViolation).code ?? '08P01', error.message));
    this.#closed = true;
    await this.#abandon().catch(() => {});
    this.socket.end();
  }

  #fail(error: unknown): void {
    if (error instanceof ProtocolViolation) {
      void this.#violation(error);
      return;
    }
    this.logger.warn({ client: this.describe(), ...errorFields(error) }, 'embedded wire client failed');
    this.#closed = true;
    void this.#abandon()
      .catch(() => this.#release().catch(() => {}))
      .finally(() => this.socket.destroy());
  }
}

/** The answer with messages put in before its ReadyForQuery (where a server sends ParameterStatus). */
function beforeReadyForQuery(answer: Buffer, messages: Buffer[]): Buffer {
  const ready = answer.length >= 6 && answer[answer.length - 6] === 0x5a ? answer.length - 6 : answer.length;
  return Buffer.concat([answer.subarray(0, ready), ...messages, answer.subarray(ready)]);
}
