import { MongoClient } from 'mongodb';
import { SuperduperError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Backend, Capabilities, SidecarConnectionOptions } from '../backend.js';
import { ConnectionHealth } from '../connection-health.js';
import { collection, newSignals, type MongoContext } from './context.js';
import { installLayout } from './install.js';
import { mongoModelCalls } from './model-calls.js';
import { COLLECTIONS } from './names.js';
import { mongoQueue } from './queue.js';
import { mongoRegistry } from './registry.js';
import { mongoSearch } from './search.js';
import { mongoSidecars, NOT_INSTALLED } from './sidecars.js';
import { mongoWakeUp } from './wake-up.js';

/**
 * MongoDB: no triggers, so a sidecar's change stream is the capture, and it
 * wakes the sidecars of its own process; the others look every half second.
 * Model calls from the shell are documents that sidecars answer.
 */
export const MONGO_CAPABILITIES: Capabilities = {
  sharedSession: false,
  crossSessionNotify: false,
  modelCallsFromQueries: 'sidecars',
  defaultReconcileMs: 500,
};

/** superduper on one MongoDB database (a replica set's: change streams need one). */
export class MongoBackend implements Backend {
  readonly name = 'mongodb';
  readonly capabilities = MONGO_CAPABILITIES;
  readonly sql = undefined;
  readonly registry;
  readonly queue;
  readonly sidecars;
  readonly wakeUp;
  readonly modelCalls;
  readonly search;
  readonly #context: MongoContext;

  constructor(context: MongoContext) {
    this.#context = context;
    const registry = mongoRegistry(context);
    this.registry = registry;
    this.queue = mongoQueue(context);
    this.sidecars = mongoSidecars(context);
    this.wakeUp = mongoWakeUp(context, registry);
    this.modelCalls = mongoModelCalls(context);
    this.search = mongoSearch(context, this.modelCalls);
  }

  get uri(): string {
    return this.#context.uri;
  }

  get health(): ConnectionHealth {
    return this.#context.health;
  }

  install() {
    return installLayout(this.#context);
  }

  async installed(): Promise<boolean> {
    return (await collection(this.#context, COLLECTIONS.meta).findOne({ _id: 'layer' as never })) !== null;
  }

  missesOwnObject(error: unknown): boolean {
    return (error as { code?: unknown } | undefined)?.code === NOT_INSTALLED;
  }

  async forSidecar(_options: SidecarConnectionOptions): Promise<Backend> {
    // A client of its own: the sidecar's pool and change stream apart from the caller's.
    return connectMongoBackend(this.#context.uri, { logger: this.#context.logger });
  }

  resetConnections(): void {
    // The driver clears a server's pool itself when a connection to it fails.
  }

  async close(): Promise<void> {
    await this.#context.client.close();
  }
}

export async function connectMongoBackend(uri: string, options: { logger: Logger; maxConnections?: number }): Promise<MongoBackend> {
  const client = new MongoClient(uri, { appName: 'superduper', serverSelectionTimeoutMS: 10_000, maxPoolSize: options.maxConnections ?? 10 });
  const name = client.options.dbName;
  if (!name || name === 'test' && !/^mongodb(\+srv)?:\/\/[^/]+\/test(\?|$)/.test(uri)) {
    throw new SuperduperError(`the MongoDB connection string names no database: ${redact(uri)}`, { hint: 'Put it after the host: mongodb://host:27017/<database>.' });
  }
  await client.connect();
  const health = new ConnectionHealth(`MongoDB ${redact(uri)}`, options.logger);
  client.on('serverHeartbeatFailed', (event) => health.lost(event.failure));
  client.on('serverHeartbeatSucceeded', () => health.answered());
  return new MongoBackend({ client, db: client.db(name), uri, logger: options.logger, health, signals: newSignals() });
}

function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}
