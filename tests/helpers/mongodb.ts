import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EJSON } from 'bson';
import { MongoClient, type Db, type Filter } from 'mongodb';
import { connect, type Superduper } from '../../src/client.js';
import { createLogger } from '../../src/logger.js';
import { startEmulator, type MongoEmulator as Emulator } from './mongodb-emulator/index.js';

/**
 * A MongoDB database for one test: on the replica set MONGODB_URI names when it
 * is set, else on the test emulation (tests/helpers/mongodb-emulator/), which
 * speaks the wire protocol to the unmodified driver and mongosh. One emulated
 * server per test file; a database per test.
 */
export interface MongoTestDatabase {
  name: string;
  /** mongodb://…/<name> */
  uri: string;
  /** A plain driver connection for the test's own reads and writes (as a user's app would). */
  client: MongoClient;
  db: Db;
  /** The emulated server, when there is one (restart, blips); undefined on a real server. */
  emulator: Emulator | undefined;
  drop(): Promise<void>;
}

let shared: Promise<Emulator> | undefined;

/** The server of this test file: MONGODB_URI's, or an emulation started on first use. */
export async function mongoServer(options: { oplogSize?: number; fresh?: boolean } = {}): Promise<{ uri: string; emulator: Emulator | undefined }> {
  const real = process.env.MONGODB_URI;
  if (real) return { uri: real, emulator: undefined };
  if (options.fresh || options.oplogSize !== undefined) {
    const emulator = await startEmulator({ oplogSize: options.oplogSize });
    return { uri: emulator.uri, emulator };
  }
  shared ??= startEmulator({});
  const emulator = await shared;
  return { uri: emulator.uri, emulator };
}

export async function createMongoTestDatabase(label: string, options: { oplogSize?: number; fresh?: boolean } = {}): Promise<MongoTestDatabase> {
  const server = await mongoServer(options);
  const name = `sdtest_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomUUID().slice(0, 8)}`;
  const uri = withDatabase(server.uri, name);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  return {
    name,
    uri,
    client,
    db: client.db(name),
    emulator: server.emulator,
    async drop() {
      await client.db(name).dropDatabase().catch(() => {});
      await client.close();
      if (server.emulator && (options.fresh || options.oplogSize !== undefined)) await server.emulator.stop();
    },
  };
}

/** mongodb://host:port/<database>?<options of the server's URI> */
export function withDatabase(serverUri: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/[^?]*)?(\?.*)?$/.exec(serverUri);
  if (!match) throw new Error(`not a MongoDB connection string: ${serverUri}`);
  return `${match[1]}/${database}${match[2] ?? ''}`;
}

export async function connectMongoTest(database: MongoTestDatabase): Promise<Superduper> {
  const db = await connect(database.uri, { logger: createLogger(process.env.SUPERDUPER_LOG_LEVEL ?? 'silent') });
  await db.install();
  return db;
}

/**
 * Runs the real mongosh (node_modules/.bin/mongosh) on a database with a
 * script, with a home of its own (it writes history and config there); returns
 * its last line of output, parsed as Extended JSON when it is JSON.
 */
export async function mongosh(uri: string, script: string, options: { load?: string[] } = {}): Promise<{ last: unknown; stdout: string; stderr: string; code: number | null }> {
  const home = mkdtempSync(join(tmpdir(), 'mongosh-home-'));
  const file = join(home, 'script.js');
  writeFileSync(file, script);
  try {
    const args = [uri, '--quiet', ...(options.load ?? []).flatMap((path) => ['--file', path]), '--file', file];
    return await new Promise((resolve) => {
      execFile(
        join(process.cwd(), 'node_modules/.bin/mongosh'),
        args,
        { timeout: 90_000, env: { ...process.env, HOME: home, MONGOSH_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1' } },
        (error, stdout, stderr) => {
          const line = stdout.trim().split('\n').pop() ?? '';
          let last: unknown = line;
          try {
            last = EJSON.parse(line, { relaxed: true });
          } catch {
            // not JSON: the line as is
          }
          resolve({ last, stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 });
        },
      );
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A test document with any _id (the driver's default types assume an ObjectId). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface AnyDocument {
  _id: any;
  [field: string]: any;
}

/** A filter on _id of any type (which the driver's filter types cannot take). */
export const byId = (id: unknown) => ({ _id: id }) as unknown as Filter<AnyDocument>;
