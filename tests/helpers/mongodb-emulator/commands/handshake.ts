/**
 * Handshake, diagnostics and sessions: what the driver and mongosh ask before
 * and around real work. The server presents itself as the primary of a
 * one-member replica set, because change streams need one; without
 * topologyVersion, so the driver polls hello instead of streaming it.
 */
import os from 'node:os';
import { Long } from 'bson';
import { fail } from '../errors.js';
import type { CommandContext, Handler } from '../state.js';
import type { Doc } from '../storage.js';

export const VERSION = '7.0.0-emulated';

function hello(key: 'isWritablePrimary' | 'ismaster'): Handler {
  return (cmd: Doc, ctx: CommandContext) => {
    const s = ctx.state;
    const now = s.log.now();
    return {
      ...(cmd.helloOk === true ? { helloOk: true } : {}),
      [key]: true,
      secondary: false,
      setName: s.settings.replicaSetName,
      setVersion: 1,
      hosts: [s.host],
      primary: s.host,
      me: s.host,
      electionId: s.electionId,
      lastWrite: {
        opTime: { ts: now, t: Long.fromNumber(1) },
        lastWriteDate: new Date(now.t * 1000),
        majorityOpTime: { ts: now, t: Long.fromNumber(1) },
        majorityWriteDate: new Date(now.t * 1000),
      },
      maxBsonObjectSize: 16777216,
      maxMessageSizeBytes: 48000000,
      maxWriteBatchSize: 100000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: ctx.connectionId,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
  };
}

const buildInfo: Handler = () => ({
  version: VERSION,
  gitVersion: 'superduper-test-emulator',
  modules: [],
  allocator: 'system',
  javascriptEngine: 'none',
  sysInfo: 'deprecated',
  versionArray: [7, 0, 0, 0],
  openssl: { running: 'disabled', compiled: 'disabled' },
  buildEnvironment: { distmod: 'emulator', target_os: process.platform, target_arch: process.arch },
  bits: 64,
  debug: false,
  maxBsonObjectSize: 16777216,
  storageEngines: ['emulator'],
  ok: 1,
});

const getParameter: Handler = (cmd) => {
  const out: Doc = {};
  const all = cmd.getParameter === '*';
  if (all || 'featureCompatibilityVersion' in cmd) out.featureCompatibilityVersion = { version: '7.0' };
  if (all || 'authenticationMechanisms' in cmd) out.authenticationMechanisms = [];
  if (all || 'requireApiVersion' in cmd) out.requireApiVersion = false;
  if (all || 'enableTestCommands' in cmd) out.enableTestCommands = 0;
  if (Object.keys(out).length === 0) fail('InvalidOptions', 'no option found to get');
  return { ...out, ok: 1 };
};

const notHere = (what: string): Handler => () => fail('AuthenticationFailed', `${what} is not supported by the superduper test emulator: connect without credentials`);

export const handshakeCommands: Record<string, Handler> = {
  hello: hello('isWritablePrimary'),
  isMaster: hello('ismaster'),
  ismaster: hello('ismaster'),
  ping: () => ({ ok: 1 }),
  buildInfo,
  buildinfo: buildInfo,
  getParameter,
  setParameter: () => ({ was: null, ok: 1 }),
  getCmdLineOpts: () => ({ argv: ['mongod', '--replSet', 'emulated'], parsed: { replication: { replSet: 'emulated' } }, ok: 1 }),
  hostInfo: () => ({
    system: { currentTime: new Date(), hostname: os.hostname(), cpuAddrSize: 64, memSizeMB: Math.round(os.totalmem() / 2 ** 20), numCores: os.cpus().length, cpuArch: process.arch },
    os: { type: os.type(), name: os.platform(), version: os.release() },
    extra: {},
    ok: 1,
  }),
  serverStatus: (_cmd, ctx) => ({
    host: os.hostname(),
    version: VERSION,
    process: 'mongod',
    pid: Long.fromNumber(process.pid),
    uptime: (Date.now() - ctx.state.startedAt.getTime()) / 1000,
    localTime: new Date(),
    connections: { current: 1, available: 1000 },
    repl: { setName: ctx.state.settings.replicaSetName, isWritablePrimary: true, primary: ctx.state.host },
    ok: 1,
  }),
  connectionStatus: () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 }),
  whatsmyuri: (_cmd, ctx) => ({ you: ctx.remote, ok: 1 }),
  getLog: (cmd) => (cmd.getLog === '*' ? { names: ['global', 'startupWarnings'], ok: 1 } : { totalLinesWritten: 0, log: [], ok: 1 }),
  getFreeMonitoringStatus: () => ({ state: 'disabled', ok: 1 }),
  replSetGetStatus: (_cmd, ctx) => ({
    set: ctx.state.settings.replicaSetName,
    date: new Date(),
    myState: 1,
    members: [{ _id: 0, name: ctx.state.host, health: 1, state: 1, stateStr: 'PRIMARY', self: true }],
    ok: 1,
  }),
  replSetGetConfig: (_cmd, ctx) => ({
    config: { _id: ctx.state.settings.replicaSetName, version: 1, members: [{ _id: 0, host: ctx.state.host }] },
    ok: 1,
  }),
  listCommands: () => ({ commands: {}, ok: 1 }),
  endSessions: () => ({ ok: 1 }),
  killSessions: () => ({ ok: 1 }),
  killAllSessions: () => ({ ok: 1 }),
  refreshSessions: () => ({ ok: 1 }),
  startSession: () => fail('IllegalOperation', 'startSession is not supported by the superduper test emulator'),
  saslStart: notHere('Authentication'),
  saslContinue: notHere('Authentication'),
  authenticate: notHere('Authentication'),
  logout: () => ({ ok: 1 }),
  commitTransaction: () => fail('IllegalOperation', 'Transactions are not supported by the superduper test emulator'),
  abortTransaction: () => fail('IllegalOperation', 'Transactions are not supported by the superduper test emulator'),
  // Atlas-only and mongos-only: a self-hosted replica-set member has neither (mongosh asks at startup).
  atlasVersion: () => fail('CommandNotFound', "no such command: 'atlasVersion'"),
  isdbgrid: () => fail('CommandNotFound', "no such command: 'isdbgrid'"),
};
