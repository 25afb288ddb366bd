import type { OutputSpec } from '../models/types.js';

/** A listener version as a sidecar sees it (superduper._worker_listeners). */
export interface ListenerInfo {
  id: number;
  name: string;
  version: number;
  state: 'current' | 'building';
  model: string;
  runtime: string;
  model_hash: string;
  model_config: Record<string, unknown>;
  model_artifact: string | null;
  /** Primary key column names of the source. */
  pk: string[];
  keys: string[];
  key_types: string[];
  output_type: string;
  output: OutputSpec;
  settings: {
    batch_size: number;
    chunk_size: number;
    max_attempts: number;
    lease_seconds: number;
  };
  has_work: boolean;
}

/**
 * A row returned by a claim function: its key as text (p1, p2, ...; sd_pk is the
 * queue's JSON form, for queued rows), its queue entries, its key values (k1, ...).
 */
export interface ClaimedRow {
  sd_pk?: string;
  sd_ids?: string[];
  sd_stamp: string | null;
  sd_live?: boolean;
  sd_chunk?: number;
  /** For a flattened listener: md5 of the key values as read (see sql/templates/write_many.sql). */
  sd_hash?: string;
  [column: `p${number}`]: string | null;
  [column: `k${number}`]: unknown;
}

/** Work claimed and not yet written, so the sidecar can extend its lease. */
export interface InFlight {
  listener: ListenerInfo;
  ackPks: string[];
  ackIds: string[];
  chunk: number | null;
  claimedAt: number;
}

/** A row's key in the queue's form: a JSON array of the text of each key column. */
export function jsonKey(listener: ListenerInfo, row: ClaimedRow): string {
  return row.sd_pk ?? JSON.stringify(listener.pk.map((_, i) => row[`p${i + 1}`]));
}
