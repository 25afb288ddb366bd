// The PostgreSQL clients users point at the product, each with its defaults:
// pgJDBC (what BI tools use), psycopg2 (notebooks), node-postgres (apps), psql
// and pgbench. The same tests run against every backend's PostgreSQL endpoint
// (the server's, the embedded database's wire endpoint), so that all behave
// alike; where a backend cannot do what a server does, a test is selected by
// that capability (tests/helpers/backends.ts) and docs/embedded.md lists it. The clients come from Debian's packages
// (scripts/test-clients.sh, run by `make test`).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { conceptModel } from '../helpers/concepts.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testBackendCapabilities } from '../helpers/backends.js';

const run = promisify(execFile);
const backend = testBackendCapabilities();
const INDEX = 'client docs index';
// PGlite starts its session with search_path = public (docs/embedded.md).
const DEFAULT_SEARCH_PATH = backend.defaultSearchPath;
// Hostile on purpose: quotes, a space, upper case and a semicolon.
const COPY_TABLE = '"Copy; ""Notes"""';

let database: TestDatabase;
let db: Superduper;
let scratch: string;

/** The test database as each client spells it. */
function endpoint() {
  const url = new URL(database.uri);
  const name = url.pathname.slice(1);
  return {
    host: url.hostname,
    port: url.port,
    name,
    jdbc: `jdbc:postgresql://${url.hostname}:${url.port}/${name}?user=postgres`,
    libpq: `host=${url.hostname} port=${url.port} dbname=${name} user=postgres`,
  };
}

// Child processes, never spawnSync: the embedded database answers from this process.
async function java(...args: string[]): Promise<string> {
  const { stdout } = await run('java', ['-cp', '/usr/share/java/postgresql.jar', 'tests/clients/JdbcClients.java', ...args], { timeout: 120_000 });
  return stdout.trim();
}

async function python(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run('/usr/bin/python3', ['tests/clients/psycopg2_clients.py', ...args], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function psql(...args: string[]): Promise<string> {
  const { stdout } = await run('psql', [database.uri, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args], { timeout: 60_000 });
  return stdout.trim();
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'superduper-clients-'));
  database = await createTestDatabase('clients');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)`);
  await database.sql.query(`INSERT INTO docs SELECT g, 'cats and dogs number ' || g FROM generate_series(1, 20) g`);
  await database.sql.query(`CREATE TABLE ${COPY_TABLE} (id int PRIMARY KEY, body text)`);
  await db.apply(
    conceptModel(),
    listener({ name: 'client docs', model: 'concepts', table: 'docs', keys: ['body'] }),
    vectorIndex({ name: INDEX, listener: 'client docs' }),
  );
  await db.start({ reconcileMs: 200 });
  await db.waitUntilIdle();
});

// Each test copies into the table from empty: pgJDBC's reads all of it back.
beforeEach(async () => {
  await database.sql.query(`TRUNCATE ${COPY_TABLE}`);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('pgJDBC with its defaults (server-side prepared statements from the fifth execution)', () => {
  it('4 connections run like() with bound parameters 50 times each, some needing the model, with no error', async () => {
    expect(await java('like', endpoint().jdbc, '4', '50', INDEX)).toBe('ok 200 errors 0');
  });

  it('with autocommit off, a first statement that calls the model (BEGIN in the same batch) returns its rows', async () => {
    expect(await java('autocommit-off', endpoint().jdbc, INDEX, `a kitten never seen before ${Date.now()}`)).toBe('rows 2');
  });

  it('CopyManager copies a CSV file in and the table out', async () => {
    const file = join(scratch, 'jdbc.csv');
    writeFileSync(file, '201,jdbc one\n202,"jdbc, two"\n');
    const out = await java('copy', endpoint().jdbc, COPY_TABLE, file);
    expect(out).toBe('in 2 out 2 201,jdbc one|202,"jdbc, two"|');
  });

  it("one connection's SETs are not seen by another", async () => {
    expect(await java('settings', endpoint().jdbc)).toBe(`a pg_catalog/1234ms b ${DEFAULT_SEARCH_PATH}/0 a pg_catalog/1234ms`);
  });
});

describe('psycopg2', () => {
  it('copy_expert copies in and out', async () => {
    const result = await python('copy', endpoint().libpq, COPY_TABLE);
    expect(result).toEqual({ copied_in: 2, out: '401,psycopg copy\n402,"psycopg, two"\n' });
  });

  it('startup options and application_name belong to their connection; SETs do not outlive it', async () => {
    const result = await python('settings', endpoint().libpq);
    expect(result).toEqual({
      a: ['ISO, DMY', '4321ms', 'pg_catalog', 'client-a'],
      reported_a: 'ISO, DMY',
      b: ['ISO, MDY', '0', DEFAULT_SEARCH_PATH, 'client-b'],
      later: ['ISO, MDY', '0', DEFAULT_SEARCH_PATH, ''],
    });
  });

  it('cancel() stops a statement waiting for a lock another client holds, with 57014', async () => {
    const result = await python('cancel_waiting', endpoint().libpq, 'docs');
    expect(result.outcome).toBe('canceled: 57014');
  });

  it.runIf(backend.interruptibleStatements)('cancel() stops a running statement with 57014, and the connection stays usable', async () => {
    const result = await python('cancel', endpoint().libpq, '30');
    expect(result).toMatchObject({ outcome: 'canceled: 57014', usable: true });
  });

  it.skipIf(backend.interruptibleStatements)('where a running statement cannot be interrupted (the embedded database), a cancel completes it, and the connection stays usable', async () => {
    // PGlite runs a statement synchronously on the host's thread: nothing can
    // interrupt it (docs/embedded.md). The cancel request must do no harm.
    const result = await python('cancel', endpoint().libpq, '1');
    expect(result).toMatchObject({ outcome: 'completed', usable: true });
  });
});

describe('psql', () => {
  it('\\copy of a CSV file in and out', async () => {
    const input = join(scratch, 'in.csv');
    const output = join(scratch, 'out.csv');
    writeFileSync(input, '301,psql one\n302,"psql, ""two"""\n303,\n');
    expect(await psql('-c', `\\copy ${COPY_TABLE} from '${input}' csv`)).toBe('COPY 3');
    await psql('-c', `\\copy (SELECT * FROM ${COPY_TABLE} WHERE id BETWEEN 300 AND 399 ORDER BY id) to '${output}' csv`);
    expect(readFileSync(output, 'utf8')).toBe(readFileSync(input, 'utf8'));
  });

  it('a failed COPY leaves nothing behind and the connection goes on', async () => {
    const input = join(scratch, 'bad.csv');
    writeFileSync(input, '501,fine\nnot a number,bad\n');
    await expect(psql('-c', `\\copy ${COPY_TABLE} from '${input}' csv`)).rejects.toThrow(/invalid input syntax for type integer: "not a number"/);
    expect(await psql('-c', `SELECT count(*) FROM ${COPY_TABLE} WHERE id = 501`)).toBe('0');
    await expect(psql('-c', `\\copy "No Such; Table" from '${input}' csv`)).rejects.toThrow(/relation "No Such; Table" does not exist/);
    expect(await psql('-c', 'SELECT 1')).toBe('1');
  });
});

describe('node-postgres', () => {
  it('a Pool running a named (prepared) query 200 times on 4 connections, then a new Pool reusing the name', async () => {
    const query = { name: 'like docs', text: 'SELECT id FROM superduper.like($1, $2, 3)' };
    for (let round = 0; round < 2; round++) {
      const pool = new pg.Pool({ connectionString: database.uri, max: 4 });
      pool.on('error', () => {});
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 200 }, (_, i) => pool.query({ ...query, values: [INDEX, i % 10 === 0 ? `dogs ${round} ${i}` : 'dogs'] })),
        );
        const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
        expect(failed).toEqual([]);
        expect(results.every((r) => r.status === 'fulfilled' && r.value.rowCount === 3)).toBe(true);
      } finally {
        await pool.end();
      }
    }
  });

  it("a statement prepared by one client is not another's, and goes with its connection", async () => {
    const a = new pg.Client({ connectionString: database.uri });
    const b = new pg.Client({ connectionString: database.uri });
    await a.connect();
    await b.connect();
    try {
      await a.query(`PREPARE mine AS SELECT 1 AS one`); // SQL-level PREPARE is shared on the embedded database (documented)
      await a.query({ name: 'only a', text: 'SELECT 2 AS two' });
      // b prepares the same name with another text: its own, no "already exists".
      expect((await b.query({ name: 'only a', text: 'SELECT 3 AS three' })).rows).toEqual([{ three: 3 }]);
      expect((await a.query({ name: 'only a', text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
    } finally {
      await a.query('DEALLOCATE mine');
      await a.end();
      await b.end();
    }
  });
});

describe('pgbench', () => {
  const script = () => {
    const file = join(scratch, 'like.sql');
    writeFileSync(file, `SELECT id FROM superduper.like('${INDEX}', 'cats and dogs', 3);\n`);
    return file;
  };

  for (const mode of ['simple', 'extended', 'prepared']) {
    it(`-M ${mode} -c 4 runs like() with no error`, async () => {
      const { host, port, name } = endpoint();
      const { stdout, stderr } = await run('pgbench', ['-n', '-h', host, '-p', port, '-U', 'postgres', '-M', mode, '-c', '4', '-t', '25', '-f', script(), name], {
        timeout: 120_000,
      });
      expect(stderr).not.toMatch(/error/i);
      expect(stdout).toMatch(/number of transactions actually processed: 100\/100/);
      expect(stdout).toMatch(/number of failed transactions: 0 /);
    });
  }

  it('a pipeline of statements that call the model (-M extended, \\startpipeline)', async () => {
    const { host, port, name } = endpoint();
    const file = join(scratch, 'pipeline.sql');
    writeFileSync(
      file,
      [
        '\\set n random(1, 1000000000)',
        '\\startpipeline',
        `SELECT id FROM superduper.like('${INDEX}', 'kitten ' || :n, 1);`,
        `INSERT INTO docs VALUES (100000 + :client_id * 1000 + :n % 1000, 'pipelined ' || :n) ON CONFLICT (id) DO NOTHING;`,
        `SELECT id FROM superduper.like('${INDEX}', 'puppy ' || :n, 1);`,
        '\\endpipeline',
        '',
      ].join('\n'),
    );
    const { stdout, stderr } = await run('pgbench', ['-n', '-h', host, '-p', port, '-U', 'postgres', '-M', 'extended', '-c', '2', '-t', '10', '-f', file, name], {
      timeout: 120_000,
    });
    expect(stderr).not.toMatch(/error/i);
    expect(stdout).toMatch(/number of transactions actually processed: 20\/20/);
  });
});

describe('a client that sends what PostgreSQL does not accept', () => {
  function rawClient(): Promise<Socket> {
    const { host, port } = endpoint();
    return new Promise((resolve, reject) => {
      const socket = connectTcp({ host, port: Number(port) }, () => resolve(socket));
      socket.on('error', reject);
    });
  }

  /** Everything the endpoint sends until it closes the connection. */
  function untilClosed(socket: Socket): Promise<Buffer> {
    const chunks: Buffer[] = [];
    return new Promise((resolve) => {
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => {});
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
  }

  /** A frontend message: type, length, the parts of its body. */
  function message(type: string, ...parts: Buffer[]): Buffer {
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head.write(type, 0);
    head.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([head, body]);
  }
  const int16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const int32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };

  function startup(): Buffer {
    const fields = Buffer.from(`user\0postgres\0database\0${endpoint().name}\0\0`);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + fields.length, 0);
    head.writeInt32BE(196608, 4); // protocol 3.0
    return Buffer.concat([head, fields]);
  }

  async function stillServes() {
    expect((await database.sql.query('SELECT count(*)::int AS n FROM docs')).rows[0].n).toBeGreaterThanOrEqual(20);
    expect(await psql('-c', 'SELECT 42')).toBe('42');
  }

  it('garbage instead of a startup message: the connection is closed, the others go on', async () => {
    const socket = await rawClient();
    const closed = untilClosed(socket);
    socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
    await closed;
    await stillServes();
  });

  it.skipIf(backend.replicationConnections)('where replication is not served (the embedded endpoint), a replication connection is refused with a reason, the others go on', async () => {
    const url = new URL(database.uri);
    url.searchParams.set('replication', 'database');
    await expect(run('psql', [url.toString(), '-X', '-A', '-t', '-c', 'IDENTIFY_SYSTEM'], { timeout: 30_000 })).rejects.toThrow(
      /the embedded endpoint does not take replication connections/,
    );
    await stillServes();
  });

  it('an unknown message type after the startup: a protocol-violation error, then the connection is closed', async () => {
    const socket = await rawClient();
    const closed = untilClosed(socket);
    socket.write(startup());
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.write(message('~', int32(0)));
    const received = (await closed).toString('latin1');
    expect(received).toContain('08P01');
    await stillServes();
  });

  it('a message whose length is impossible: the connection is closed, the others go on', async () => {
    const socket = await rawClient();
    const closed = untilClosed(socket);
    socket.write(startup());
    await new Promise((resolve) => setTimeout(resolve, 200));
    const bad = Buffer.alloc(5);
    bad.write('Q', 0);
    bad.writeInt32BE(2, 1); // shorter than its own length field
    socket.write(bad);
    await closed;
    await stillServes();
  });

  it('the unnamed statement, parsed in one batch and bound in a later one with other clients in between, is still the client\'s', async () => {
    const socket = await rawClient();
    let received = Buffer.alloc(0);
    socket.on('data', (chunk) => (received = Buffer.concat([received, chunk])));
    const untilReady = async (count: number) => {
      await eventuallyTrue(() => received.filter((byte, i) => byte === 0x5a && received[i + 1] === 0 && received[i + 4] === 5).length >= count);
    };
    socket.write(startup());
    await untilReady(1);
    socket.write(Buffer.concat([message('P', Buffer.from('\0SELECT $1::int + 1 AS n\0'), int16(0)), message('S')]));
    await untilReady(2);
    // Another client's statements (each uses the unnamed statement of its own).
    await database.sql.query('SELECT $1::text AS other', ['x']);
    expect(await psql('-c', 'SELECT 7')).toBe('7');
    const value = Buffer.from('41');
    socket.write(
      Buffer.concat([
        message('B', Buffer.from('\0\0'), int16(0), int16(1), int32(value.length), value, int16(0)),
        message('E', Buffer.from('\0'), int32(0)),
        message('S'),
      ]),
    );
    await untilReady(3);
    socket.destroy();
    const text = received.toString('latin1');
    expect(text).not.toContain('does not exist');
    expect(text).toMatch(/D\0\0\0\x0c\0\x01\0\0\0\x0242/); // one column: "42"
  });

  it('a client that vanishes in the middle of COPY FROM STDIN leaves no rows and no lock', async () => {
    const client = new pg.Client({ connectionString: database.uri });
    await client.connect();
    client.on('error', () => {});
    const copyIn = startCopyIn(client, `COPY ${COPY_TABLE} FROM STDIN (FORMAT csv)`);
    await copyIn.started;
    copyIn.write('601,half a copy\n');
    (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
    await stillServes();
    expect(await psql('-c', `SELECT count(*) FROM ${COPY_TABLE} WHERE id = 601`)).toBe('0');
  });
});

/**
 * COPY FROM STDIN with node-postgres, without pg-copy-streams: the query is sent
 * and CopyData written by hand once the CopyInResponse arrives.
 */
function startCopyIn(client: pg.Client, sql: string) {
  const connection = (client as unknown as { connection: { stream: Socket; once(event: string, f: () => void): void } }).connection;
  const started = new Promise<void>((resolve) => connection.once('copyInResponse', resolve));
  client.query(sql).catch(() => {});
  return {
    started,
    write(text: string) {
      const data = Buffer.from(text);
      const head = Buffer.alloc(5);
      head.write('d', 0);
      head.writeInt32BE(4 + data.length, 1);
      connection.stream.write(Buffer.concat([head, data]));
    },
  };
}

async function eventuallyTrue(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
