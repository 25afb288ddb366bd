// What is particular to the embedded database (PGlite behind the wire server):
// one session shared in turns, model calls answered by the hosting process and
// statements re-run, a real psql against the endpoint, the data-folder lock, and
// the demo. Runs in the pglite project only (see vitest.config.ts).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDatabase } from '../../../src/backends/pglite/driver.js';
import { connect, type Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { demoCommand } from '../../../src/cli/commands/demo.js';
import { DEMO_INDEX, DEMO_LISTENER, DEMO_QUERIES, DEMO_TABLE, runDemo } from '../../../src/demo/demo.js';
import { createLogger } from '../../../src/logger.js';
import { serveEmbedded } from '../../../src/backends/pglite/wire-server.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { conceptModel } from '../../helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { PGLITE_TEMPLATE_FILE } from '../../helpers/uris.js';

const run = promisify(execFile);

let database: TestDatabase;
let db: Superduper;
const clients: pg.Client[] = [];

async function client(user = 'postgres'): Promise<pg.Client> {
  const url = new URL(database.uri);
  url.username = user;
  const c = new pg.Client({ connectionString: url.toString() });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  database = await createTestDatabase('embedded');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)`);
  await database.sql.query(`INSERT INTO notes VALUES (1, 'my cat likes to meow'), (2, 'stock market shares fell')`);
  await db.apply(
    conceptModel(),
    listener({ name: 'notes_concepts', model: 'concepts', table: 'notes', keys: ['body'] }),
    vectorIndex({ name: 'notes_index', listener: 'notes_concepts' }),
    vectorIndex({ name: 'notes_words', listener: 'notes_concepts', fullText: 'english' }),
    functionModel({
      name: 'longest_first',
      output: { type: 'jsonb' },
      predict: (inputs: Array<{ documents: string[] }>) => inputs.map(({ documents }) => documents.map((d) => d.length)),
    }),
  );
  await db.start({ reconcileMs: 200 });
  await db.waitUntilIdle();
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await db?.close();
  await database?.drop();
});

describe('one session in turns', () => {
  it('a client inside a transaction block holds the session: others wait for its COMMIT, then see its rows', async () => {
    const a = await client();
    const b = await client();
    const events: string[] = [];
    await a.query('BEGIN');
    await a.query(`INSERT INTO notes VALUES (10, 'a note written inside a block')`);
    const read = b.query<{ n: number }>('SELECT count(*)::int AS n FROM notes WHERE id = 10').then((result) => {
      events.push('b read');
      return result.rows[0]!.n;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    events.push('a commits');
    await a.query('COMMIT');
    expect(await read).toBe(1);
    expect(events).toEqual(['a commits', 'b read']);
  });

  it('a client that disconnects inside a block has it rolled back, and frees the session', async () => {
    const a = await client();
    await a.query('BEGIN');
    await a.query(`INSERT INTO notes VALUES (11, 'never committed')`);
    await a.end();
    const b = await client();
    // Were the block still open, this would wait for it (and time out).
    const rows = await b.query('SELECT id FROM notes WHERE id = 11');
    expect(rows.rows).toEqual([]);
  });
});

describe('model calls from SQL, answered by the hosting process', () => {
  it('inside a block: the call is answered and the statement re-run from a savepoint; earlier writes survive', async () => {
    const a = await client();
    await a.query('BEGIN');
    await a.query(`INSERT INTO notes VALUES (20, 'written before the search')`);
    const hits = await a.query<{ id: string }>(`SELECT id FROM superduper.like('notes_index', 'a purring kitten cat meow, never asked before', 1)`);
    expect(hits.rows.map((r) => r.id)).toEqual(['1']);
    await a.query('COMMIT');
    expect((await database.sql.query('SELECT body FROM notes WHERE id = 20')).rows).toEqual([{ body: 'written before the search' }]);
  });

  it('inside a block: hybrid(), rerank() and rag_context() calls are answered too', async () => {
    const a = await client();
    await a.query('BEGIN');
    await a.query(`INSERT INTO notes VALUES (23, 'written before the searches')`);
    const hybrid = await a.query<{ id: string }>(`SELECT id FROM superduper.hybrid('notes_words', 'a kitten that meows, asked in a block', 1)`);
    expect(hybrid.rows.map((r) => r.id)).toEqual(['1']);
    // The reranker puts the longest of the candidates first.
    const candidates = await a.query<{ id: string; length: number }>(
      `SELECT h.id, length(n.body) AS length FROM superduper.hybrid('notes_words', 'shares, asked in a block', 3) AS h JOIN notes n ON n.id = h.id::int`,
    );
    const reranked = await a.query<{ id: string }>(`SELECT id FROM superduper.rerank('notes_words', 'shares, asked in a block', 'longest_first', 1, p_candidates => 3)`);
    expect(reranked.rows.map((r) => r.id)).toEqual([candidates.rows.reduce((a, b) => (b.length > a.length ? b : a)).id]);
    const context = await a.query<{ sources: unknown[] }>(`SELECT sources FROM superduper.rag_context('notes_index', 'cats, asked for a prompt in a block', 1)`);
    expect(context.rows[0]!.sources).toHaveLength(1);
    await a.query('COMMIT');
    expect((await database.sql.query('SELECT body FROM notes WHERE id = 23')).rows).toEqual([{ body: 'written before the searches' }]);
  });

  it('inside a block, a later error still aborts the whole block', async () => {
    const a = await client();
    await a.query('BEGIN');
    await a.query(`INSERT INTO notes VALUES (21, 'rolled back with its block')`);
    await a.query(`SELECT superduper.embed('concepts', 'finance shares market, a fresh query')`);
    await expect(a.query('SELECT 1 / 0')).rejects.toThrow(/division by zero/);
    await expect(a.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
    await a.query('ROLLBACK');
    expect((await database.sql.query('SELECT id FROM notes WHERE id = 21')).rows).toEqual([]);
  });

  it('a message that commits around the call cannot be re-run: it gets the SDM01 error, and nothing of it is applied', async () => {
    const a = await client();
    const script = `BEGIN; INSERT INTO notes VALUES (22, 'in a one-message script'); SELECT superduper.embed('concepts', 'a dog that barks, asked in a script'); COMMIT;`;
    const error = await a.query(script).then(
      () => undefined,
      (e: pg.DatabaseError) => e,
    );
    expect(error?.code).toBe('SDM01');
    expect(error?.message).toMatch(/model "concepts" cannot be called from SQL here/);
    await a.query('ROLLBACK');
    expect((await database.sql.query('SELECT id FROM notes WHERE id = 22')).rows).toEqual([]);
  });
});

describe('the wire endpoint', () => {
  it('refuses a role that does not exist, naming it', async () => {
    await expect(client('nobody here')).rejects.toThrow(/role "nobody here" does not exist/);
  });

  it('serves the psql binary: a search joined to its rows, and an insert whose output appears', async () => {
    const psql = (sql: string) => run('psql', [database.uri, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 30_000 });
    const search = await psql(`SELECT n.body FROM superduper.like('notes_index', 'finance news about shares', 1) l JOIN notes n ON n.id = l.id::int`);
    expect(search.stdout.trim()).toBe('stock market shares fell');
    await psql(`INSERT INTO notes VALUES (30, 'a puppy that will bark at the dog next door')`);
    // Read your writes, as the README shows it: wait_for returns once row 30 has its output.
    const waited = await psql(`SELECT count(*) FROM superduper.wait_for('notes_concepts')`);
    expect(waited.stdout.trim()).toBe('0');
    expect((await database.sql.query('SELECT 1 FROM superduper.out_notes_concepts WHERE id = 30')).rowCount).toBe(1);
    const nearest = await psql(`SELECT id FROM superduper.like('notes_index', 'dog barking', 1)`);
    expect(nearest.stdout.trim()).toBe('30');
  });

  it("keeps superduper's notifications for the sidecar: a client that writes gets none", async () => {
    const a = await client();
    const received: string[] = [];
    a.on('notification', (note) => received.push(note.channel));
    await a.query(`INSERT INTO notes VALUES (31, 'a notified insert about a cat')`);
    await eventually(async () => (await database.sql.query('SELECT 1 FROM superduper.out_notes_concepts WHERE id = 31')).rowCount === 1, 10_000, 'the output of row 31');
    await a.query('SELECT 1');
    expect(received).toEqual([]);
  });
});

describe('LISTEN and NOTIFY between clients', () => {
  it('a notification goes to the clients that listen on its channel, as on a server', async () => {
    const [listener, other, sender] = [await client(), await client(), await client()];
    const heard: string[] = [];
    for (const [name, c] of [['listener', listener], ['other', other], ['sender', sender]] as const) {
      c.on('notification', (note) => heard.push(`${name} ${note.channel} ${note.payload}`));
    }
    await listener.query('LISTEN news');
    await listener.query('LISTEN "Mixed Case"');
    await other.query('LISTEN news');
    await other.query('UNLISTEN news'); // the one session stops listening: the listener must still hear
    await sender.query(`NOTIFY news, 'first'`);
    await sender.query(`SELECT pg_notify('Mixed Case', 'second')`);
    await eventually(async () => heard.length >= 2, 5_000, 'two notifications');
    await listener.query('SELECT 1');
    expect(heard.sort()).toEqual(['listener Mixed Case second', 'listener news first']);
  });

  it("a client's UNLISTEN * leaves the session listening for the others and for the sidecar", async () => {
    const [a, b] = [await client(), await client()];
    await b.query('LISTEN still_here');
    await a.query('UNLISTEN *');
    const channels = await a.query<{ channel: string }>('SELECT pg_listening_channels() AS channel');
    expect(channels.rows.map((r) => r.channel)).toEqual(expect.arrayContaining(['superduper', 'still_here']));
  });
});

describe('data folder', () => {
  it('is opened by one process at a time: a second open names the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superduper lock '));
    try {
      const first = await EmbeddedDatabase.open({ dataDir: dir });
      await expect(EmbeddedDatabase.open({ dataDir: dir })).rejects.toThrow(`the embedded database in ${dir} is in use by another process`);
      await first.query(`CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')`);
      await first.close();
      const second = await EmbeddedDatabase.open({ dataDir: dir });
      expect((await second.query('SELECT v FROM kept')).rows).toEqual([{ v: 'still here' }]);
      // The demo's --reset refuses to delete a folder another process has open.
      const reset = demoCommand({ dir, reset: true, serve: false, host: '127.0.0.1', port: 0, idleInTransactionTimeout: 30, waitTimeout: 60, logLevel: 'silent' });
      await expect(reset).rejects.toThrow(`the embedded database in ${dir} is in use by another process`);
      expect((await second.query('SELECT v FROM kept')).rows).toEqual([{ v: 'still here' }]);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lock`, { recursive: true, force: true });
    }
  });
});

describe('the demo', () => {
  it('embeds the documentation, finds passages by meaning, and a second run only searches', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superduper-demo-'));
    const output: string[] = [];
    const write = (text: string) => output.push(text);
    try {
      const demo = await connect(`pglite:${dir}`, { logger: createLogger('silent') });
      await demo.install();
      const worker = await demo.start();
      const first = await runDemo(demo, write);
      await worker.stop();
      expect(first.passages).toBeGreaterThan(100);
      expect(first.computed).toBe(first.passages);
      const outputs = await demo.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${DEMO_TABLE} JOIN superduper.out_${DEMO_LISTENER} USING (id)`);
      expect(outputs.rows[0]!.n).toBe(first.passages);
      expect(first.searches.map((s) => s.query)).toEqual(DEMO_QUERIES);
      for (const search of first.searches) {
        expect(search.hits).toHaveLength(3);
        expect(search.hits.map((h) => h.score)).toEqual([...search.hits.map((h) => h.score)].sort((x, y) => y - x));
      }
      // The passage about failed rows is found by a question that shares few of its words.
      const failing = await demo.search(DEMO_INDEX, 'what happens to a row when the model keeps failing?', { k: 5 });
      const headings = await demo.db.query<{ heading: string }>(`SELECT heading FROM ${DEMO_TABLE} WHERE id = ANY($1::int[])`, [failing.map((h) => Number(h.id))]);
      expect(headings.rows.map((r) => r.heading)).toContain('Failures are data');
      expect(output.join('')).toMatch(/JOIN superduper\.out_docs_embedding o USING \(id\)/);
      // The RAG step: the RAG guide's sections as chunks, and an answer quoting
      // one of the passages it was given, cited by number.
      const { rows: chunkFiles } = await demo.db.query<{ file: string; n: number }>(
        `SELECT DISTINCT d.file FROM superduper.out_docs_chunks c JOIN ${DEMO_TABLE} d USING (id)`,
      );
      expect(chunkFiles.map((r) => r.file)).toEqual(['docs/rag.md']);
      expect(first.rag.chunks).toBeGreaterThan(5);
      expect(first.rag.passages).toHaveLength(3);
      expect(first.rag.answer).toMatch(/ \[[1-3]\]$/);
      expect(output.join('')).toMatch(/stand-in-llm is NOT a language model/);
      await demo.close();

      const again = await connect(`pglite:${dir}`, { logger: createLogger('silent') });
      const second = await runDemo(again, () => {});
      expect(second).toMatchObject({ passages: first.passages, computed: 0 });
      expect(second.searches).toEqual(first.searches);
      expect(second.rag).toEqual(first.rag);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lock`, { recursive: true, force: true });
    }
  });
});

describe('the limits of one shared session', () => {
  /** A second endpoint on the same database with short limits, and what it logs. */
  async function limitedEndpoint(limits: { idleInTransactionTimeoutMs: number; waitTimeoutMs: number }) {
    const lines: Array<{ msg: string; client?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) });
    const server = await serveEmbedded(database.embedded!, { logger, ...limits });
    const errors = new Map<pg.Client, Error[]>();
    const connectTo = async (applicationName: string) => {
      const c = new pg.Client({ connectionString: server.uri, application_name: applicationName });
      errors.set(c, []);
      c.on('error', (error) => errors.get(c)!.push(error));
      await c.connect();
      clients.push(c);
      return c;
    };
    return { server, lines, connectTo, errorsOf: (c: pg.Client) => errors.get(c)! };
  }

  it('a client idle in a transaction past the limit is rolled back and disconnected, naming it in the log; the others go on', async () => {
    const endpoint = await limitedEndpoint({ idleInTransactionTimeoutMs: 400, waitTimeoutMs: 0 });
    try {
      const idle = await endpoint.connectTo('forgetful notebook');
      const ended = new Promise((resolve) => idle.once('end', resolve));
      await idle.query('BEGIN');
      await idle.query(`INSERT INTO notes VALUES (40, 'left in an open transaction')`);
      const other = await endpoint.connectTo('patient report');
      // Waits for the session until the idle client's transaction is rolled back.
      expect((await other.query('SELECT count(*)::int AS n FROM notes WHERE id = 40')).rows).toEqual([{ n: 0 }]);
      // As from a server: the FATAL error comes unasked, and the connection ends.
      await ended;
      expect(endpoint.errorsOf(idle).map((e) => e.message)).toContain('terminating connection due to idle-in-transaction timeout');
      await expect(idle.query('COMMIT')).rejects.toThrow(/not queryable/);
      const logged = endpoint.lines.find((line) => /idle in a transaction/.test(line.msg));
      expect(logged?.client).toMatch(/forgetful notebook/);
    } finally {
      await endpoint.server.close();
    }
  });

  it('a statement that waits for the session past the limit fails, naming the client that holds it', async () => {
    const endpoint = await limitedEndpoint({ idleInTransactionTimeoutMs: 0, waitTimeoutMs: 300 });
    try {
      const holder = await endpoint.connectTo('long report');
      await holder.query('BEGIN');
      const waiter = await endpoint.connectTo('dashboard');
      const error = await waiter.query('SELECT 1').then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      expect(error?.code).toBe('55P03');
      expect(error?.message).toMatch(/long report/);
      await holder.query('COMMIT');
      expect((await waiter.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await endpoint.server.close();
    }
  });
});

describe('when PostgreSQL inside PGlite exits', () => {
  it('every client is told, every later call fails at once with the reason, and the process stays responsive', async () => {
    const stopping = await EmbeddedDatabase.open({ loadDataDir: new Blob([readFileSync(PGLITE_TEMPLATE_FILE)]) });
    const server = await serveEmbedded(stopping, { logger: createLogger('silent') });
    const user = new pg.Client({ connectionString: server.uri });
    const errors: Error[] = [];
    user.on('error', (error) => errors.push(error));
    await user.connect();
    // What the endpoint never lets a client do (a COPY FROM STDIN without its
    // data in the same call), done directly: PGlite's PostgreSQL exits.
    const copy = Buffer.from('COPY pg_catalog.pg_class FROM STDIN\0');
    const header = Buffer.alloc(5);
    header.write('Q');
    header.writeInt32BE(4 + copy.length, 1);
    await expect(stopping.pglite.execProtocolRaw(Buffer.concat([header, copy]))).rejects.toThrow(/the embedded database stopped/);
    await eventually(async () => errors.length > 0, 5_000, "the client's error");
    expect(errors[0]!.message).toMatch(/the embedded database stopped/);
    await expect(stopping.query('SELECT 1')).rejects.toThrow(/the embedded database stopped/);
    expect(stopping.stopped?.hint).toMatch(/Start the process again/);
    await new Promise((resolve) => setTimeout(resolve, 10)); // timers still fire: the event loop is not stuck
    await stopping.close();
  });
});

describe('superduper serve', () => {
  it('stops on SIGTERM whatever its clients are doing: inside a COPY, inside a block, or sending garbage', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superduper-serve-'));
    // A folder made from the test template (a new one takes PGlite's initdb, ~10 s).
    await (await EmbeddedDatabase.open({ dataDir: dir, loadDataDir: new Blob([readFileSync(PGLITE_TEMPLATE_FILE)]) })).close();
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const uri = (await eventually(async () => /psql "([^"]+)"/.exec(output)?.[1], 90_000, 'the endpoint')) as string;
      const setup = new pg.Client({ connectionString: uri });
      await setup.connect();
      await setup.query('CREATE TABLE copied (a int)');
      await setup.end();
      const copying = new pg.Client({ connectionString: uri });
      copying.on('error', () => {});
      await copying.connect();
      const connection = (copying as unknown as { connection: { once(event: string, f: () => void): void } }).connection;
      const copyStarted = new Promise<void>((resolve) => connection.once('copyInResponse', resolve));
      copying.query('COPY copied FROM STDIN').catch(() => {});
      await copyStarted;
      // (A COPY's data waits in the endpoint, not in the session: another client can begin a block.)
      const inBlock = new pg.Client({ connectionString: uri });
      inBlock.on('error', () => {});
      await inBlock.connect();
      await inBlock.query('BEGIN');
      const url = new URL(uri);
      const garbage = connectTcp({ host: url.hostname, port: Number(url.port) }, () => garbage.write('\x00\x00\x00\x08garbage!'));
      garbage.on('error', () => {});
      await new Promise((resolve) => setTimeout(resolve, 200));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toContain('stopping');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lock`, { recursive: true, force: true });
    }
  });
});
