import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { createLogger } from '../../../src/logger.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import type { Sidecar } from '../../../src/sidecar/sidecar.js';
import { conceptModel } from '../../helpers/concepts.js';
import { createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { adminUri } from '../../helpers/uris.js';
import { LOCKS } from '../../../src/generated/constants.js';

/**
 * Each kind of connection a sidecar holds, lost in each way, with the sidecar
 * in this process (db.start(), as in a user's application: an unhandled
 * 'error' event would fail this file). The sidecar reaches the database
 * through a TCP proxy the test controls; the test's own SQL goes directly.
 */
let database: TestDatabase;
let proxy: TcpProxy;
let side: Superduper;
let app: Superduper;
let worker: Sidecar;
const lines: Array<{ level: number; msg: string; [field: string]: unknown }> = [];
let nextId = 1;

const slowLengths = functionModel({
  name: 'slow_length',
  output: { type: 'float' },
  version: 'slow-1',
  predict: async (texts: string[]) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return texts.map((text) => text.length);
  },
});

beforeAll(async () => {
  database = await createTestDatabase('lost_connections');
  const server = new URL(adminUri());
  proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port) });
  const logger = pino({ level: 'debug' }, { write: (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean).map((line) => JSON.parse(line))) });
  side = await connect(proxy.uri(database.name), { logger });
  app = await connect(database.uri, { logger: createLogger('silent') });
  await database.sql.query(`CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)`);
  await database.sql.query(`CREATE TABLE "Slow Notes" (id int PRIMARY KEY, body text NOT NULL)`);
  await side.apply(
    conceptModel(),
    slowLengths,
    listener({ name: 'notes_concepts', model: 'concepts', table: 'notes', keys: ['body'] }),
    vectorIndex({ name: 'notes_index', listener: 'notes_concepts' }),
  );
  // Notifications alone wake the sidecar: the reconciliation scan would hide a lost LISTEN.
  worker = await side.start({ reconcileMs: 60_000, heartbeatMs: 500, stallTimeoutMs: 2000, deadAfterMs: 60_000 });
});

afterAll(async () => {
  await side?.close();
  await app?.close();
  await proxy?.close();
  await database?.drop();
});

async function insertNotes(count = 5): Promise<number[]> {
  const ids = Array.from({ length: count }, () => nextId++);
  for (const id of ids) await database.sql.query(`INSERT INTO notes VALUES ($1, $2)`, [id, `the cat number ${id} likes to meow`]);
  return ids;
}

async function outputsFor(ids: number[]): Promise<number> {
  const result = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_notes_concepts WHERE id = ANY ($1)`, [ids]);
  return result.rows[0].n;
}

/** Log lines since index `from` that say the connection was lost / is back. */
function outages(from: number): { lost: typeof lines; back: typeof lines; errors: typeof lines } {
  const since = lines.slice(from);
  return {
    lost: since.filter((line) => line.msg === 'lost the connection to the database; reconnecting'),
    back: since.filter((line) => /^reconnected to the database after/.test(line.msg)),
    errors: since.filter((line) => line.level >= 50),
  };
}

const terminate = (condition: string) =>
  database.sql.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND ${condition}`);

const sleeping = async () => (await database.sql.query(`SELECT bool_and(sleeping) AS s FROM superduper._workers`)).rows[0].s === true;

/** A note with its output, so that like() has a row to find (whichever test runs first). */
async function aComputedNote(): Promise<void> {
  const ids = await insertNotes(1);
  await eventually(async () => (await outputsFor(ids)) === 1, 10_000, 'the output of a note');
}

describe('pg_terminate_backend on each connection of a sidecar', () => {
  it('its pooled connections, mid-backfill: batches are made again, every row gets its output once', async () => {
    await database.sql.query(`INSERT INTO "Slow Notes" SELECT g, repeat('x', g % 50 + 1) FROM generate_series(1, 1500) g`);
    await side.apply(listener({ name: 'slow_notes', model: 'slow_length', table: 'Slow Notes', keys: ['body'], settings: { chunk_size: 100, batch_size: 50 } }));
    worker.refresh();
    // Every write of an output, to find one written twice for the same value.
    await database.sql.query(`CREATE TABLE writes (id int, stamp bigint);
      CREATE FUNCTION record_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.writes VALUES (NEW.id, NEW._stamp); RETURN NULL; END $$;
      CREATE TRIGGER record_write AFTER INSERT OR UPDATE ON superduper.out_slow_notes FOR EACH ROW EXECUTE FUNCTION record_write()`);
    const done = async () => (await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_slow_notes`)).rows[0].n as number;
    const mark = lines.length;
    await eventually(async () => (await done()) >= 200, 20_000, 'the backfill to be under way');
    await terminate(`application_name = 'superduper sidecar'`);
    await eventually(async () => (await done()) >= 700, 20_000, 'the backfill to go on');
    await terminate(`application_name = 'superduper sidecar'`);
    expect((await app.waitFor('slow_notes', { timeoutMs: 30_000 })).failed).toEqual([]);
    expect(await done()).toBe(1500);
    const wrong = await database.sql.query(`SELECT count(*)::int AS n FROM "Slow Notes" s JOIN superduper.out_slow_notes o USING (id) WHERE o.output <> length(s.body)`);
    expect(wrong.rows[0].n).toBe(0);
    const twice = await database.sql.query(`SELECT count(*)::int AS n FROM (SELECT id, stamp FROM writes GROUP BY id, stamp HAVING count(*) > 1) d`);
    expect(twice.rows[0].n).toBe(0);
    const { lost, back, errors } = outages(mark);
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(back).toHaveLength(lost.length);
    expect(errors).toEqual([]);
    // Nothing is left leased to this sidecar.
    const leased = await database.sql.query(
      `SELECT (SELECT count(*) FROM superduper._queue WHERE leased_by = $1) + (SELECT count(*) FROM superduper._backfill WHERE leased_by = $1) AS n`,
      [worker.id],
    );
    expect(Number(leased.rows[0].n)).toBe(0);
  });

  it('its LISTEN connection: it listens again and is woken by the next change', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const before = await database.sql.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'superduper sidecar listener'`);
    expect(before.rows).toHaveLength(1);
    await terminate(`application_name = 'superduper sidecar listener'`);
    await eventually(
      async () =>
        (await database.sql.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'superduper sidecar listener' AND pid <> $1`, [before.rows[0].pid])).rows[0].n === 1,
      10_000,
      'a new LISTEN connection',
    );
    const ids = await insertNotes();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 10_000, 'outputs woken by NOTIFY');
  });

  it('the connection it sleeps on (holding the sleep lock): it wakes at once, and sleeps on a new one', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const holder = `pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ${LOCKS.namespace} AND objid = ${LOCKS.sleep} AND granted)`;
    // (After the previous test the sidecar may still be taking its sleep lock again.)
    const held = await eventually(
      async () => {
        const result = await database.sql.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND ${holder}`);
        return result.rows.length === 1 ? result : undefined;
      },
      10_000,
      'the sleep lock to be held',
    );
    await terminate(holder);
    // Without waking, it would sleep on for the 60 s of reconcileMs, and the
    // sleep lock would not be held: writers would not notify.
    const ids = await insertNotes();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 10_000, 'outputs after the sleep connection was cut');
    await eventually(
      async () => (await database.sql.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND ${holder} AND pid <> $1`, [held!.rows[0].pid])).rows[0].n === 1,
      10_000,
      'the sleep lock to be taken again',
    );
  });

  it('its connection for model calls from SQL: the next like() is answered', async () => {
    await aComputedNote();
    const like = async (query: string) =>
      (await database.sql.query(`SELECT id FROM superduper.like('notes_index', $1, 1)`, [query])).rows;
    expect(await like('a cat that meows')).toHaveLength(1);
    const killed = await terminate(`application_name = 'superduper sidecar requests'`);
    expect(killed.rows).toHaveLength(1);
    expect(await like('a feline kitten')).toHaveLength(1); // not cached: a round trip to the sidecar
  });

  it("a SQL session's own connection for model calls: the same session's next like() opens it again", async () => {
    await aComputedNote();
    const session = new pg.Client({ connectionString: database.uri });
    session.on('error', () => {});
    await session.connect();
    try {
      const like = async (query: string) => (await session.query(`SELECT id FROM superduper.like('notes_index', $1, 1)`, [query])).rows;
      expect(await like('cats and kittens')).toHaveLength(1);
      const killed = await terminate(`application_name = 'superduper_requests'`);
      expect(killed.rows.length).toBeGreaterThanOrEqual(1);
      expect(await like('meow meow feline')).toHaveLength(1);
    } finally {
      await session.end();
    }
  });
});

describe('a network that drops, stalls or refuses (the proxy between sidecar and server)', () => {
  it('every connection reset at once', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const mark = lines.length;
    proxy.drop();
    const ids = await insertNotes();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 10_000, 'outputs after the reset');
    const { lost, back, errors } = outages(mark);
    expect(lost).toHaveLength(1);
    expect(back).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('a stall (no byte through, every socket open): found by the heartbeat, not waited on forever', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const mark = lines.length;
    proxy.freeze();
    const ids = await insertNotes();
    // stallTimeoutMs is 2 s: the sidecar notices well before the network comes back.
    await eventually(async () => outages(mark).lost.length === 1, 8_000, 'the stall to be noticed');
    // Found by the heartbeat (2 s), or by a connection attempt under way at the stall (5 s), whichever ends first.
    expect(String(outages(mark).lost[0]!.error)).toMatch(/did not answer within 2 s|did not accept a connection within 5 s/);
    expect(await outputsFor(ids)).toBe(0);
    expect(worker.status().state).toBe('reconnecting');
    // A model call from SQL meanwhile: a clear error, saying the sidecar is not heard from.
    const session = await database.sql.connect();
    try {
      await session.query(`SET superduper.request_timeout = '1s'`);
      const error = await session.query(`SELECT superduper.embed('concepts', 'asked during the stall')`).catch((e: unknown) => e as pg.DatabaseError);
      expect((error as pg.DatabaseError).message).toMatch(/no sidecar answered within 00:00:01 \(model "concepts"\)/);
      expect((error as pg.DatabaseError).hint).toMatch(/1 sidecar\(s\) registered, none seen for \d+ s \(reconnecting, or gone/);
    } finally {
      await session.query('RESET superduper.request_timeout');
      session.release();
    }
    await proxy.resume();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 15_000, 'outputs after the stall');
    // And answered again once the sidecar is back.
    const answered = await database.sql.query(`SELECT vector_dims(superduper.embed('concepts', 'asked during the stall')) AS dims`);
    expect(answered.rows[0].dims).toBe(6);
    const { lost, back, errors } = outages(mark);
    expect(lost, lines.slice(mark).map((line) => JSON.stringify(line)).join('\n')).toHaveLength(1);
    expect(back).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('a half-open connection (the server side gone, the client side silent)', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const mark = lines.length;
    proxy.halfOpen();
    const ids = await insertNotes();
    await eventually(async () => outages(mark).lost.length === 1, 8_000, 'the half-open connections to be noticed');
    await proxy.resume();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 15_000, 'outputs after the half-open connections').catch((error: Error) => {
      throw new Error(`${error.message}\n${lines.slice(mark).map((line) => JSON.stringify(line)).join('\n')}`);
    });
    expect(outages(mark).back).toHaveLength(1);
    expect(outages(mark).errors).toEqual([]);
  });

  it('connections refused for a while', async () => {
    await eventually(sleeping, 10_000, 'the sidecar to sleep');
    const mark = lines.length;
    proxy.refuse();
    const ids = await insertNotes();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await outputsFor(ids)).toBe(0);
    await proxy.resume();
    await eventually(async () => (await outputsFor(ids)) === ids.length, 10_000, 'outputs after the refusals');
    const { lost, back, errors } = outages(mark);
    expect(lost).toHaveLength(1);
    expect(String(lost[0]!.error)).toMatch(/ECONNREFUSED|Connection terminated|ECONNRESET/);
    expect(back).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});
