import { EventEmitter } from 'node:events';
import { Timestamp, type Collection, type Db, type Document, type MongoClient } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { ConnectionHealth } from '../connection-health.js';

/** What every part of the MongoDB backend works through: one client, one database. */
export interface MongoContext {
  readonly client: MongoClient;
  readonly db: Db;
  readonly uri: string;
  readonly logger: Logger;
  readonly health: ConnectionHealth;
  /**
   * Wake-ups raised in this process by the capture (the change stream it reads):
   * 'changed' (listener id), 'request' (id), 'listeners' (the registry changed).
   */
  readonly signals: EventEmitter;
}

export function collection<T extends Document = Document>(context: MongoContext, name: string): Collection<T> {
  return context.db.collection<T>(name);
}

export function newSignals(): EventEmitter {
  const signals = new EventEmitter();
  signals.setMaxListeners(0);
  return signals;
}

/**
 * The cluster's time now: the operationTime of a round trip, which is at least
 * that of every write acknowledged before it. A change event with a later
 * clusterTime happened after this call.
 */
export async function clusterTime(context: MongoContext): Promise<Timestamp> {
  const reply = await context.db.command({ ping: 1 });
  const time = reply.operationTime as unknown;
  if (!(time instanceof Timestamp)) {
    throw new Error('the MongoDB server reports no operationTime: superduper needs a replica set (change streams do); a one-member replica set will do');
  }
  return time;
}

/**
 * A Timestamp as a sortable text of 16 hex digits: the order of change events,
 * stored with every queue entry and output (as `_seq`). Text, not a number: a
 * Timestamp does not fit a double, and a string compares the same everywhere
 * (in mongosh, in aggregations, in every driver).
 */
export function seqOf(time: Timestamp): string {
  return time.t.toString(16).padStart(8, '0') + time.i.toString(16).padStart(8, '0');
}

export function timestampOf(seq: string): Timestamp {
  return new Timestamp({ t: Number.parseInt(seq.slice(0, 8), 16), i: Number.parseInt(seq.slice(8), 16) });
}
