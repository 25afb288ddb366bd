/** What survives a restart (data, history, clock) and what commands are handed. */
import { ObjectId } from 'bson';
import { ChangeLog } from './change-log.js';
import { CursorRegistry } from './cursors.js';
import { Storage } from './storage.js';
import type { Doc } from './storage.js';

export interface EmulatorSettings {
  oplogSize: number;
  replicaSetName: string;
}

export class EmulatorState {
  readonly storage = new Storage();
  readonly log: ChangeLog;
  readonly cursors = new CursorRegistry();
  readonly electionId = new ObjectId();
  readonly startedAt = new Date();
  /** lsid → the last retryable write's txnNumber and reply, so a retry after a lost reply is not applied twice. */
  readonly retried = new Map<string, { txnNumber: string; reply: Doc }>();
  port = 0;
  nextConnectionId = 1;

  constructor(readonly settings: EmulatorSettings) {
    this.log = new ChangeLog(settings.oplogSize);
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
}

export interface CommandContext {
  state: EmulatorState;
  db: string;
  connectionId: number;
  remote: string;
  /** OP_MSG document sequences by identifier, as raw BSON. */
  sequences: Map<string, Buffer[]>;
  /** True once the client's connection is gone: waiting commands stop early. */
  closed(): boolean;
}

export type Handler = (cmd: Doc, ctx: CommandContext) => Doc | Promise<Doc>;
