import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * A PostgreSQL 15 cluster of a test's own, so that a test can restart, crash or
 * fail over a server without disturbing the shared test server (scripts/pg.sh)
 * that the other test files use in parallel. Nothing is registered globally:
 * the caller calls destroy() (in afterAll).
 *
 * Durability settings are PostgreSQL's defaults (fsync, synchronous_commit,
 * full_page_writes all on), so that crash tests are honest.
 */
export interface TestCluster {
  readonly port: number;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  /** postgres://postgres@127.0.0.1:<port>/<database, default 'postgres'> */
  uri(database?: string): string;
  /** Starts the server and waits until it accepts connections (or, for a cold standby, until it is in recovery). */
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** SIGKILLs the postmaster and every backend, then starts again: PostgreSQL runs crash recovery. */
  crash(): Promise<void>;
  /** A streaming standby of this cluster on its own port (pg_basebackup -R -X stream). */
  createStandby(options?: { hotStandby?: boolean }): Promise<TestCluster>;
  /** Promotes a standby and waits until it accepts writes. */
  promote(): Promise<void>;
  isInRecovery(): Promise<boolean>;
  /** Stops the server (immediate) and removes its directories. */
  destroy(): Promise<void>;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const CLUSTERS_DIR = fileURLToPath(new URL('../../.pg/clusters', import.meta.url));
/** PostgreSQL refuses to run as root, so as root (in CI) every binary runs as `postgres`, as in scripts/pg.sh. */
const AS_ROOT = process.getuid?.() === 0;
const PG_USER = 'postgres';
/** A Unix socket path must fit in sun_path (107 bytes); PostgreSQL adds "/.s.PGSQL.<port>". */
const MAX_SOCKET_DIR = 80;
const START_ATTEMPTS = 3;

const execFileAsync = promisify(execFile);

export async function createCluster(name: string, options: { settings?: Record<string, string | number> } = {}): Promise<TestCluster> {
  const dirs = await makeClusterDirs(name);
  const cluster = new Cluster(dirs);
  try {
    // --no-sync skips initdb's final fsync of the new files: only an OS crash
    // could lose them, and our crash tests kill processes, not the kernel.
    await run(`${PG_BIN}/initdb`, ['-D', dirs.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    await appendSettings(dirs.dataDir, {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dirs.socketDir,
      max_connections: 100,
      shared_buffers: '32MB',
      wal_level: 'replica',
      max_wal_senders: 5,
      hot_standby: 'on',
      log_min_messages: 'warning',
      ...options.settings,
    });
    await cluster.startOnFreePort(options.settings?.port);
    return cluster;
  } catch (error) {
    await cluster.destroy().catch(() => {});
    throw error;
  }
}

interface ClusterDirs {
  name: string;
  /** Holds the data directory and the log; removed by destroy(). */
  root: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
}

class Cluster implements TestCluster {
  port = 0;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;

  constructor(private readonly dirs: ClusterDirs) {
    this.dataDir = dirs.dataDir;
    this.socketDir = dirs.socketDir;
    this.logFile = dirs.logFile;
  }

  uri(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    await this.pgCtl(['start', '-w', '-t', '60', '-l', this.logFile]);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.pgCtl(['stop', '-m', mode, '-w', '-t', '60']);
  }

  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.pgCtl(['restart', '-m', mode, '-w', '-t', '60', '-l', this.logFile]);
  }

  async crash(): Promise<void> {
    const postmaster = await this.postmasterPid();
    process.kill(postmaster, 'SIGKILL');
    // Its backends outlive it (reparented to init) and hold its shared memory:
    // PostgreSQL refuses to start while any of them lives. They are found by
    // their working directory, which every PostgreSQL process sets to the data directory.
    const dataDir = await realpath(this.dataDir);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const alive = await processesIn(dataDir);
      if (alive.length === 0) break;
      if (Date.now() > deadline) throw new Error(`cluster ${this.dataDir}: processes ${alive.join(', ')} survived SIGKILL`);
      for (const pid of alive) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await sleep(20);
    }
    // The stale lock files stay, as after a real crash: the new postmaster sees
    // their pid is dead and replaces them. Unless the pid is an unreaped zombie
    // (under an init that does not reap, as on some CI machines and containers):
    // kill(pid, 0) then says it lives and the postmaster refuses to start. We
    // know every process is dead, so the lock files can go; crash recovery
    // depends on pg_control and the WAL, not on them.
    if (await isZombie(postmaster)) {
      await rm(path.join(this.dataDir, 'postmaster.pid'), { force: true });
      await rm(path.join(this.socketDir, `.s.PGSQL.${this.port}.lock`), { force: true });
    }
    await this.start();
  }

  async createStandby(options: { hotStandby?: boolean } = {}): Promise<TestCluster> {
    const dirs = await makeClusterDirs(`${this.dirs.name}-standby`);
    const standby = new Cluster(dirs);
    try {
      // -c fast: checkpoint at once instead of spreading it (which takes minutes by default).
      // --no-sync: as in initdb, only an OS crash could lose the unsynced copy.
      await run(`${PG_BIN}/pg_basebackup`, ['-D', dirs.dataDir, '-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
      // The copy carries the primary's postgresql.conf; later lines win.
      await appendSettings(dirs.dataDir, {
        unix_socket_directories: dirs.socketDir,
        hot_standby: options.hotStandby === false ? 'off' : 'on',
      });
      await standby.startOnFreePort();
      return standby;
    } catch (error) {
      await standby.destroy().catch(() => {});
      throw error;
    }
  }

  async promote(): Promise<void> {
    await this.pgCtl(['promote', '-w', '-t', '60']);
  }

  async isInRecovery(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.uri() });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery');
      return rows[0]!.recovery;
    } catch (error) {
      // A standby with hot_standby = off refuses connections (57P03); ask the control file instead.
      if ((error as { code?: string }).code !== '57P03') throw error;
      const { stdout } = await run(`${PG_BIN}/pg_controldata`, ['-D', this.dataDir]);
      return /^Database cluster state:.*recovery/m.test(stdout);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async destroy(): Promise<void> {
    if (existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
      await this.stop('immediate').catch(() => {});
    }
    await rm(this.dirs.root, { recursive: true, force: true });
    if (!this.socketDir.startsWith(this.dirs.root)) await rm(this.socketDir, { recursive: true, force: true });
  }

  /**
   * Picks a free port and starts. A port that was free when probed can be taken
   * by the time the postmaster binds it (test files run in parallel), so a
   * failure to bind is retried on another port.
   */
  async startOnFreePort(fixedPort?: string | number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = fixedPort !== undefined ? Number(fixedPort) : await freePort();
      await appendSettings(this.dataDir, { port: this.port });
      try {
        await this.start();
        return;
      } catch (error) {
        const portTaken = /could not (bind|create listen socket)|Address already in use/i.test(String(error));
        if (!portTaken || fixedPort !== undefined || attempt >= START_ATTEMPTS) throw error;
      }
    }
  }

  private async postmasterPid(): Promise<number> {
    const file = path.join(this.dataDir, 'postmaster.pid');
    const pid = Number((await readFile(file, 'utf8')).split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`cluster ${this.dataDir}: no postmaster pid in ${file}`);
    return pid;
  }

  private async pgCtl(args: string[]): Promise<void> {
    try {
      await run(`${PG_BIN}/pg_ctl`, ['-D', this.dataDir, ...args]);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- tail of ${this.logFile} ---\n${await logTail(this.logFile)}`);
    }
  }
}

/**
 * Creates .pg/clusters/<name>-<random>/ (owned by postgres when we are root) and
 * picks a socket directory short enough for a Unix socket path.
 */
async function makeClusterDirs(name: string): Promise<ClusterDirs> {
  const created = await mkdir(CLUSTERS_DIR, { recursive: true });
  if (created) await chownToPg(created, CLUSTERS_DIR);
  const root = await mkdtemp(path.join(CLUSTERS_DIR, `${name.replace(/[^a-zA-Z0-9_-]+/g, '_')}-`));
  let socketDir = path.join(root, 'run');
  if (socketDir.length > MAX_SOCKET_DIR) socketDir = await mkdtemp(path.join(tmpdir(), 'pgsock-'));
  else await mkdir(socketDir);
  await chownToPg(root);
  await chownToPg(socketDir);
  return { name, root, dataDir: path.join(root, 'data'), socketDir, logFile: path.join(root, 'postgres.log') };
}

let pgIds: Promise<{ uid: number; gid: number }> | undefined;

/** Gives `dir` (and every directory between it and `deepest`) to the postgres user, when we are root. */
async function chownToPg(dir: string, deepest = dir): Promise<void> {
  if (!AS_ROOT) return;
  pgIds ??= Promise.all([
    execFileAsync('id', ['-u', PG_USER]),
    execFileAsync('id', ['-g', PG_USER]),
  ]).then(([uid, gid]) => ({ uid: Number(uid.stdout), gid: Number(gid.stdout) }));
  const { uid, gid } = await pgIds;
  for (let current = deepest; ; current = path.dirname(current)) {
    await chown(current, uid, gid);
    if (path.resolve(current) === path.resolve(dir) || current === path.dirname(current)) break;
  }
}

/** Runs a PostgreSQL binary (as postgres when we are root); errors carry the command and its output. */
async function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const [file, argv] = AS_ROOT ? ['runuser', ['-u', PG_USER, '--', command, ...args]] : [command, args];
  // Our own PG* variables (PGHOST, PGPORT, PGDATA...) must not redirect the tools.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')));
  try {
    // cwd: a directory the postgres user can enter (root's cwd may not be), and
    // stdio is ours only for the tool itself: pg_ctl -l sends the server's output to the log.
    return await execFileAsync(file, argv, { env, cwd: CLUSTERS_DIR, timeout: 120_000 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    const output = [e.stderr?.trim(), e.stdout?.trim()].filter(Boolean).join('\n');
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed: ${output || e.message}`);
  }
}

async function appendSettings(dataDir: string, settings: Record<string, string | number>): Promise<void> {
  const lines = Object.entries(settings).map(([key, value]) =>
    typeof value === 'number' ? `${key} = ${value}` : `${key} = '${value.replace(/'/g, "''")}'`,
  );
  // The file belongs to postgres but we are root or postgres, so we may append.
  await appendFile(path.join(dataDir, 'postgresql.conf'), `\n# tests/helpers/cluster.ts\n${lines.join('\n')}\n`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The live processes whose working directory is `dir`: a cluster's postmaster and backends. */
async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/cwd`)) === dir) found.push(Number(entry));
    } catch {
      // gone, a zombie (whose resources are already released), or not ours to inspect
    }
  }
  return found;
}

/** Whether `pid` has exited but not been reaped (state Z in /proc/<pid>/stat). */
async function isZombie(pid: number): Promise<boolean> {
  try {
    // The state follows the command name, which is in parentheses and may contain spaces.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function logTail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
