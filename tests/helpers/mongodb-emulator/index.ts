/**
 * An emulated MongoDB server for tests: the primary of a one-member replica
 * set, speaking the wire protocol to the unmodified driver and mongosh. The
 * product never knows it exists; tests connect to `emu.uri` like to any server.
 */
import { EmulatorServer } from './server.js';
import { EmulatorState } from './state.js';

export interface EmulatorOptions {
  /** 0 (the default): any free port. */
  port?: number;
  /** How many events the history keeps; resuming from before them fails with ChangeStreamHistoryLost. */
  oplogSize?: number;
  replicaSetName?: string;
}

export interface MongoEmulator {
  /** mongodb://127.0.0.1:PORT (add '/<db>' and options yourself) */
  readonly uri: string;
  readonly port: number;
  /**
   * Cuts every connection (reset, unless `graceful`: closed) and open cursor,
   * stops listening for downMs, listens again on the same port; data and
   * history stay, as a mongod's files do.
   */
  restart(options?: { downMs?: number; graceful?: boolean }): Promise<void>;
  /** A network blip: every socket destroyed, the server keeps listening (and keeps its cursors). */
  dropAllConnections(): void;
  /** Connections open now. */
  connections(): number;
  stop(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<MongoEmulator> {
  const state = new EmulatorState({
    oplogSize: options.oplogSize ?? 1_000_000,
    replicaSetName: options.replicaSetName ?? 'rs0',
  });
  let server = new EmulatorServer(state);
  const port = await server.listen(options.port ?? 0);
  let stopped = false;
  return {
    uri: `mongodb://127.0.0.1:${port}`,
    port,
    async restart({ downMs = 0, graceful = false } = {}) {
      if (stopped) throw new Error('the emulator was stopped');
      await server.close(graceful);
      state.cursors.killAll();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      server = new EmulatorServer(state);
      await server.listen(port);
    },
    dropAllConnections() {
      server.dropAllConnections();
    },
    connections() {
      return server.connectionCount;
    },
    async stop() {
      stopped = true;
      await server.close();
      state.cursors.close();
    },
  };
}
