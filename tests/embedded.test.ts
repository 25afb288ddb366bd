// What is particular to the embedded database (PGlite behind the wire server):
// one session shared in turns, model calls answered by the hosting process and
// statements re-run, a real psql against the endpoint, the data-folder lock, and
// the demo. Runs in the pglite project only (see vitest.config.ts).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDatabase } from '../src/backends/pglite.js';
import { connect, type Superduper } from '../src/client.js';
import { listener } from '../src/components/listener.js';
import { vectorIndex } from '../src/components/vector-index.js';
import { demoCommand } from '../src/cli/commands/demo.js';
import { DEMO_INDEX, DEMO_LISTENER, DEMO_QUERIES, DEMO_TABLE, runDemo } from '../src/demo/demo.js';
import { createLogger } from '../src/logger.js';
import { conceptModel } from './helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from './helpers/database.js';

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
      const reset = demoCommand({ dir, reset: true, serve: false, host: '127.0.0.1', port: 0, logLevel: 'silent' });
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
      await demo.close();

      const again = await connect(`pglite:${dir}`, { logger: createLogger('silent') });
      const second = await runDemo(again, () => {});
      expect(second).toMatchObject({ passages: first.passages, computed: 0 });
      expect(second.searches).toEqual(first.searches);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lock`, { recursive: true, force: true });
    }
  });
});
