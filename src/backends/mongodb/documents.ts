import type { Document } from 'mongodb';
import type { OutputSpec } from '../../models/types.js';
import type { ListenerSettings, ListenerSpec, ModelSpec, VectorIndexSpec } from './specs.js';

/** The documents of superduper's collections (see names.ts and docs/mongodb.md). */

/**
 * A source document's _id: any BSON value. (`unknown` would make the driver's
 * filter types refuse every query on it.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SourceId = any;

export interface ModelDoc {
  _id: string;
  name: string;
  runtime: string;
  output: OutputSpec;
  config: Record<string, unknown>;
  artifact: string | null;
  spec: ModelSpec;
  spec_hash: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export type ListenerState = 'current' | 'building' | 'frozen' | 'stopped';

export interface ListenerDoc {
  /** The version's id: a number, as the core's listener ids are. */
  _id: number;
  name: string;
  version: number;
  state: ListenerState;
  model: string;
  collection: string;
  keys: string[];
  filter: Record<string, unknown> | null;
  settings: ListenerSettings;
  spec: ListenerSpec;
  spec_hash: string;
  /** Where this version writes. */
  outputs: string;
  /** What users read: the view onto the current version's outputs. */
  outputs_view: string;
  /** Changes with a later clusterTime are the change stream's; earlier ones the backfill's. Unset for a moment after the insert. */
  seq_start?: string;
  backfill: Backfill;
  note: string | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * A backfill walks the source's _id index in order, one type bracket at a time
 * (MongoDB compares values of one type at a time: $gt: 5 never matches "a").
 */
export interface Backfill {
  /** Index into ID_BRACKETS of the bracket being read. */
  bracket: number;
  /** The last _id handed out in that bracket, wrapped (an _id may be null); null: none yet. */
  after: { v: unknown } | null;
  /** Every bracket read to its end and every range written. */
  done: boolean;
  /** Documents to compute when it began. */
  total: number;
  /** Documents written by it so far. */
  written: number;
  /** Ranges handed out so far (numbers them). */
  chunks: number;
  /**
   * No output exists but those this backfill wrote: a range need not look for
   * outputs computed meanwhile. Cleared by the first write from the queue.
   */
  fresh: boolean;
  /** A reconciling re-scan (the change stream's history was lost): outputs older than this go when it ends. */
  reconcile_before: string | null;
  /**
   * Documents found gone (deleted, or out of the filter) by the queue while
   * this backfill runs. A range whose write sees it moved since its claim
   * checks that its documents are still there (their outputs may have been
   * removed before it wrote them). Absent: none.
   */
  gone?: number;
}

export interface QueueDoc {
  _id: { l: number; k: string };
  listener_id: number;
  /** The source document's _id, as stored. */
  key: SourceId;
  /** The clusterTime of its latest change (seqOf): the version of the value to compute. */
  seq: string;
  /** The clusterTime of its oldest change not yet computed: what waitFor() waits for. */
  first_seq: string;
  enqueued_at: Date;
  attempts: number;
  next_at: Date;
  owner?: string;
  lease_until?: Date;
  /** The claim that set owner (a claim reads back what it got by it). */
  claim?: string;
  last_error?: string;
}

export interface BackfillRangeDoc {
  _id: { l: number; n: number };
  listener_id: number;
  bracket: number;
  /** Exclusive lower bound (null: the bracket's start) and the last _id in it. */
  after: { v: unknown } | null;
  last: { v: unknown };
  rows: number;
  owner: string;
  lease_until: Date;
  /** Rows of it its owner has computed so far, not yet written (queue.progress). */
  computed?: number;
}

export interface FailureDoc {
  _id: { l: number; k: string };
  listener_id: number;
  listener: string;
  version: number;
  key: SourceId;
  seq: string;
  attempts: number;
  error: string;
  first_failed_at: Date;
  failed_at: Date;
  withdrawn: boolean;
}

export interface OutputDoc {
  _id: SourceId;
  output: unknown;
  /** The clusterTime of the change it was computed for (the backfill's start, for the backfill's). */
  _seq: string;
  /** A hash of the key values it was computed from. */
  _input: string;
  _computed_at: Date;
}

export interface VectorIndexDoc {
  _id: string;
  name: string;
  listener: string;
  query_model: string | null;
  measure: VectorIndexSpec['measure'];
  spec: VectorIndexSpec;
  spec_hash: string;
  /** 'vector_search' when the server took a $vectorSearch index; else searches are exact. */
  search: 'vector_search' | 'exact';
  /** The stages that score outputs against a query, the vector a placeholder (search-pipeline.ts): what mongosh runs. */
  score_stages: Document[];
  /** The string in score_stages that stands for the query vector. */
  query_placeholder: string;
  note: string | null;
  created_at: Date;
}

export interface SidecarDoc {
  _id: string;
  host: string;
  pid: number;
  functions: string[];
  state: string;
  started_at: Date;
  seen_at: Date;
  outages: number;
  last_outage_seconds: number | null;
  last_outage_reason: string | null;
}

export interface RequestDoc {
  _id: SourceId;
  model: string;
  kind: 'embed' | 'predict';
  input: unknown;
  state: 'pending' | 'claimed' | 'done' | 'failed';
  created_at: Date;
  owner?: string;
  lease_until?: Date;
  value?: unknown;
  error?: string;
  answered_at?: Date;
}

export interface ComponentDoc {
  _id: SourceId;
  /** Unset (or 'pending') until a sidecar applied it: then 'applied' or 'failed'. */
  status?: 'pending' | 'applying' | 'applied' | 'failed';
  owner?: string;
  lease_until?: Date;
  result?: unknown;
  error?: string;
  hint?: string;
  applied_at?: Date;
  [field: string]: unknown;
}
