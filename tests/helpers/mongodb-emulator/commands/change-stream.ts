/**
 * Change streams: `$changeStream` aggregates and their getMores. Events are
 * made from the history when read, so a stream opened with any option sees
 * the same writes; the user's later stages run over them with mingo.
 */
import { deserialize, Timestamp } from 'bson';
import { isPlainDoc } from '../bson-order.js';
import { decodeToken, type OplogEntry, type Position } from '../change-log.js';
import { longId, type ChangeCursor, type ChangeStreamSpec } from '../cursors.js';
import { fail } from '../errors.js';
import { compileFilter, docOf, runPipeline } from '../query.js';
import type { CommandContext, EmulatorState } from '../state.js';
import type { Doc } from '../storage.js';

const INTERNAL_DBS = new Set(['admin', 'config', 'local']);
const EXPANDED_ONLY = new Set(['create', 'createIndexes', 'dropIndexes']);
const OPTION_KEYS = new Set([
  'fullDocument',
  'fullDocumentBeforeChange',
  'resumeAfter',
  'startAfter',
  'startAtOperationTime',
  'showExpandedEvents',
  'allChangesForCluster',
  'allowToRunOnConfigDB',
  'allowToRunOnSystemNS',
  'showSystemEvents',
  'showMigrationEvents',
]);

function concerns(spec: ChangeStreamSpec, e: OplogEntry): boolean {
  if (EXPANDED_ONLY.has(e.op) && !spec.showExpandedEvents) return false;
  if (e.coll?.startsWith('system.')) return false;
  if (spec.db === null) return !INTERNAL_DBS.has(e.db);
  if (e.db !== spec.db) return false;
  if (spec.coll === null) return true;
  return e.coll === spec.coll;
}

/** Whether this entry ends the stream: its collection (or database) is gone. */
function invalidates(spec: ChangeStreamSpec, e: OplogEntry): boolean {
  if (spec.db === null) return false;
  if (spec.coll === null) return e.op === 'dropDatabase' && e.db === spec.db;
  return (e.op === 'drop' || e.op === 'rename') && e.db === spec.db && e.coll === spec.coll;
}

const HEADER_FIELDS = new Set(['_id', 'operationType', 'ns', 'documentKey', 'clusterTime', 'wallTime']);

/** The top-level fields a filter reads (through $and, $or, $nor); null when it has other operators ($expr, $where…). */
function fieldsRead(filter: Doc, into = new Set<string>()): Set<string> | null {
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(value)) return null;
      for (const sub of value) if (!isPlainDoc(sub) || !fieldsRead(sub, into)) return null;
    } else if (key.startsWith('$')) return null;
    else into.add(key.split('.')[0] as string);
  }
  return into;
}

/** A leading `$match` on header fields only, compiled to test events before their documents are read. */
function headerMatchOf(pipeline: Doc[]): ((event: Doc) => boolean) | undefined {
  const first = pipeline[0];
  if (!first || Object.keys(first).length !== 1 || !isPlainDoc(first.$match)) return undefined;
  const fields = fieldsRead(first.$match);
  if (!fields || [...fields].some((f) => !HEADER_FIELDS.has(f))) return undefined;
  return compileFilter(first.$match);
}

function headerOf(state: EmulatorState, e: OplogEntry): Doc {
  const header: Doc = {
    _id: state.log.token(e.ts, { seq: e.seq, invalidate: false }),
    operationType: e.op,
    clusterTime: e.ts,
    wallTime: e.wall,
    ns: e.op === 'dropDatabase' ? { db: e.db } : { db: e.db, coll: e.coll },
  };
  if (e.id !== undefined) header.documentKey = { _id: e.id };
  return header;
}

function imageOf(bytes: Uint8Array | undefined): Doc | null {
  return bytes ? (deserialize(bytes) as Doc) : null;
}

function eventOf(state: EmulatorState, spec: ChangeStreamSpec, e: OplogEntry): Doc {
  const base: Doc = {
    _id: state.log.token(e.ts, { seq: e.seq, invalidate: false }),
    operationType: e.op,
    clusterTime: e.ts,
    wallTime: e.wall,
  };
  const ns = { db: e.db, coll: e.coll };
  const documentKey = { _id: e.id };
  switch (e.op) {
    case 'insert':
      return { ...base, fullDocument: imageOf(e.doc), ns, documentKey };
    case 'replace':
      return withPreImage({ ...base, fullDocument: imageOf(e.doc), ns, documentKey }, spec, e);
    case 'update': {
      const ev: Doc = { ...base, ns, documentKey, updateDescription: e.desc };
      if (spec.fullDocument === 'updateLookup') {
        const rec = state.storage.collection(e.db, e.coll as string)?.findById(e.id);
        ev.fullDocument = rec ? docOf(rec) : null;
      } else if (spec.fullDocument === 'whenAvailable' || spec.fullDocument === 'required') {
        if (!e.doc && spec.fullDocument === 'required') {
          fail('ChangeStreamFatalError', `Change stream was configured to require a post-image for all update, delete and replace events. The post-image for the event with resume token '${(base._id as { _data: string })._data}' was not found. Enable changeStreamPreAndPostImages on the collection first.`);
        }
        ev.fullDocument = imageOf(e.doc);
      }
      return withPreImage(ev, spec, e);
    }
    case 'delete':
      return withPreImage({ ...base, ns, documentKey }, spec, e);
    case 'drop':
      return { ...base, ns };
    case 'rename':
      return { ...base, ns, to: e.to };
    case 'dropDatabase':
      return { ...base, ns: { db: e.db } };
    default:
      return { ...base, ns, ...(e.extra ?? {}) };
  }
}

function withPreImage(ev: Doc, spec: ChangeStreamSpec, e: OplogEntry): Doc {
  if (spec.fullDocumentBeforeChange === 'whenAvailable' || spec.fullDocumentBeforeChange === 'required') {
    if (!e.pre && spec.fullDocumentBeforeChange === 'required') {
      fail('ChangeStreamFatalError', 'Change stream was configured to require a pre-image, but none was recorded. Enable changeStreamPreAndPostImages on the collection first.');
    }
    ev.fullDocumentBeforeChange = imageOf(e.pre);
  }
  return ev;
}

function invalidateEvent(state: EmulatorState, e: OplogEntry): Doc {
  return { _id: state.log.token(e.ts, { seq: e.seq, invalidate: true }), operationType: 'invalidate', clusterTime: e.ts, wallTime: e.wall };
}

interface Batch {
  events: Doc[];
  pos: Position;
  invalidated: boolean;
}

const SCAN_CHUNK = 1000;

/** Events after the cursor's position, at most `max`, through the user's stages. */
function collect(state: EmulatorState, cursor: ChangeCursor, max: number): Batch {
  const log = state.log;
  const spec = cursor.spec;
  const out: Doc[] = [];
  let pos = cursor.pos;
  while (out.length < max) {
    // Candidates from the next chunk of history, in order, with their positions.
    const cands: { ev: Doc; pos: Position; invalidate: boolean }[] = [];
    let scanned: Position = pos;
    let seq = pos.seq + 1;
    let stop = false;
    // Resuming from a drop's own token still owes the invalidate that followed it.
    const at = pos.invalidate ? undefined : log.get(pos.seq);
    if (at && concerns(spec, at) && invalidates(spec, at)) {
      cands.push({ ev: invalidateEvent(state, at), pos: { seq: pos.seq, invalidate: true }, invalidate: true });
      stop = true;
    }
    for (let n = 0; seq <= log.lastSeq && n < SCAN_CHUNK && !stop; seq++, n++) {
      const e = log.get(seq);
      scanned = { seq, invalidate: false };
      if (!e || !concerns(spec, e)) continue;
      // The full match still runs in the pipeline: this only skips events it would drop.
      if (!spec.headerMatch || spec.headerMatch(headerOf(state, e))) {
        cands.push({ ev: eventOf(state, spec, e), pos: { seq, invalidate: false }, invalidate: false });
      }
      if (invalidates(spec, e)) {
        cands.push({ ev: invalidateEvent(state, e), pos: { seq, invalidate: true }, invalidate: true });
        scanned = { seq, invalidate: true };
        stop = true;
      }
    }
    // The invalidate is not the user's to filter: the stream ends either way.
    const inv = cands.length && (cands[cands.length - 1] as { invalidate: boolean }).invalidate ? cands.pop() : undefined;
    const passed = spec.pipeline.length ? runPipeline(cands.map((c) => c.ev), spec.pipeline) : cands.map((c) => c.ev);
    let full = false;
    for (const ev of passed) {
      if (out.length >= max) {
        full = true;
        break;
      }
      out.push(ev);
      pos = positionOf(ev);
    }
    if (full) return { events: out, pos, invalidated: false };
    if (inv) {
      if (out.length >= max) return { events: out, pos, invalidated: false };
      out.push(inv.ev);
      return { events: out, pos: inv.pos, invalidated: true };
    }
    if (scanned.seq === pos.seq && scanned.invalidate === pos.invalidate) break;
    pos = scanned;
  }
  return { events: out, pos, invalidated: false };
}

function positionOf(ev: Doc): Position {
  try {
    const t = decodeToken(ev._id);
    return { seq: t.seq, invalidate: t.invalidate };
  } catch {
    return fail(
      'ChangeStreamFatalError',
      'Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.',
    );
  }
}

function postBatchToken(state: EmulatorState, pos: Position): { _data: string } {
  return state.log.token(state.log.tsAt(pos.seq), pos);
}

function batchSizeOf(cmd: Doc, fallback: number): number {
  const n = Number((cmd.cursor as Doc | undefined)?.batchSize ?? cmd.batchSize ?? fallback);
  return n > 0 ? n : n === 0 ? 0 : fallback;
}

/** The aggregate that opens a stream: `pipeline[0]` is `{$changeStream: …}`. */
export function openChangeStream(cmd: Doc, ctx: CommandContext): Doc {
  const pipeline = cmd.pipeline as Doc[];
  const options = ((pipeline[0] as Doc).$changeStream ?? {}) as Doc;
  if (!isPlainDoc(options)) fail('TypeMismatch', "the $changeStream stage specification must be an object");
  for (const k of Object.keys(options)) if (!OPTION_KEYS.has(k)) fail('FailedToParse', `BSON field '$changeStream.${k}' is an unknown field.`);
  for (const stage of pipeline.slice(1)) {
    const name = Object.keys(stage)[0] ?? '';
    if (['$changeStream', '$out', '$merge', '$lookup', '$group', '$sort', '$facet', '$limit', '$skip'].includes(name)) {
      fail('IllegalOperation', `${name} is not permitted in a $changeStream pipeline`);
    }
  }
  const state = ctx.state;
  const wholeDb = cmd.aggregate === 1;
  let db: string | null = ctx.db;
  const coll = wholeDb ? null : String(cmd.aggregate);
  if (options.allChangesForCluster === true) {
    if (ctx.db !== 'admin' || !wholeDb) fail('InvalidOptions', "A change stream with 'allChangesForCluster: true' may only be opened on the 'admin' database, and with no collection name");
    db = null;
  } else if (INTERNAL_DBS.has(ctx.db)) {
    fail('InvalidNamespace', `$changeStream may not be opened on the internal ${ctx.db} database`);
  }
  if (coll && state.storage.view(ctx.db, coll)) fail('CommandNotSupportedOnView', `Namespace ${ctx.db}.${coll} is a view, not a collection`);
  const fullDocument = String(options.fullDocument ?? 'default');
  if (!['default', 'updateLookup', 'whenAvailable', 'required'].includes(fullDocument)) fail('BadValue', `unknown full document option: '${fullDocument}'`);
  const given = ['resumeAfter', 'startAfter', 'startAtOperationTime'].filter((k) => options[k] !== undefined);
  if (given.length > 1) fail('BadValue', 'Only one type of resume option is allowed, but multiple were found.');
  let pos: Position;
  if (options.resumeAfter !== undefined) {
    const token = decodeToken(options.resumeAfter);
    if (token.invalidate) {
      fail('InvalidResumeToken', "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.");
    }
    state.log.checkResumable(token);
    pos = { seq: token.seq, invalidate: false };
  } else if (options.startAfter !== undefined) {
    const token = decodeToken(options.startAfter);
    state.log.checkResumable(token);
    pos = { seq: token.seq, invalidate: token.invalidate };
  } else if (options.startAtOperationTime !== undefined) {
    if (!(options.startAtOperationTime instanceof Timestamp)) fail('TypeMismatch', "'startAtOperationTime' must be a Timestamp");
    pos = state.log.positionAt(options.startAtOperationTime);
  } else {
    pos = { seq: state.log.lastSeq, invalidate: false };
  }
  const cursor: ChangeCursor = {
    kind: 'change',
    id: state.cursors.newId(),
    ns: coll ? `${ctx.db}.${coll}` : `${ctx.db}.$cmd.aggregate`,
    spec: {
      db,
      coll,
      fullDocument,
      fullDocumentBeforeChange: String(options.fullDocumentBeforeChange ?? 'off'),
      showExpandedEvents: options.showExpandedEvents === true,
      pipeline: pipeline.slice(1),
      headerMatch: headerMatchOf(pipeline.slice(1)),
    },
    pos,
    lastUsed: Date.now(),
    busy: false,
  };
  const batch = collect(state, cursor, batchSizeOf(cmd, 101));
  cursor.pos = batch.pos;
  if (!batch.invalidated) state.cursors.add(cursor);
  return {
    cursor: {
      firstBatch: batch.events,
      postBatchResumeToken: postBatchToken(state, batch.pos),
      id: longId(batch.invalidated ? 0n : cursor.id),
      ns: cursor.ns,
    },
    ok: 1,
  };
}

/** Waits up to maxTimeMS (default 1 s) for events, waking at the first write. */
export async function changeStreamGetMore(cursor: ChangeCursor, cmd: Doc, ctx: CommandContext): Promise<Doc> {
  const state = ctx.state;
  const max = Number(cmd.batchSize ?? 0) > 0 ? Number(cmd.batchSize) : Infinity;
  const wait = typeof cmd.maxTimeMS === 'number' ? cmd.maxTimeMS : 1000;
  const deadline = Date.now() + wait;
  cursor.busy = true;
  try {
    for (;;) {
      const batch = collect(state, cursor, max);
      cursor.pos = batch.pos;
      const left = deadline - Date.now();
      if (batch.events.length || batch.invalidated || left <= 0 || ctx.closed() || !state.cursors.get(cursor.id)) {
        if (batch.invalidated) state.cursors.kill(cursor.id);
        return {
          cursor: {
            nextBatch: batch.events,
            postBatchResumeToken: postBatchToken(state, batch.pos),
            id: longId(batch.invalidated ? 0n : cursor.id),
            ns: cursor.ns,
          },
          ok: 1,
        };
      }
      await state.log.waitForAppend(left);
    }
  } finally {
    cursor.busy = false;
  }
}
