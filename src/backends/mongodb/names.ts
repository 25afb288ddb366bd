/**
 * Where superduper keeps its state in a MongoDB database: collections under the
 * prefix "superduper." (docs/mongodb.md lists them). The dots make them reachable
 * in mongosh as db.superduper.listeners, db.superduper.outputs.docs_embedding.
 */
export const PREFIX = 'superduper.';

export const COLLECTIONS = {
  /** One document: the layer's version ({_id: 'layer'}), and the id counter ({_id: 'ids'}). */
  meta: `${PREFIX}meta`,
  /** Component specs inserted from the shell, applied by a sidecar, with the result written back. */
  components: `${PREFIX}components`,
  models: `${PREFIX}models`,
  /** Listener versions, with their change-stream position and backfill progress. */
  listeners: `${PREFIX}listeners`,
  vectorIndexes: `${PREFIX}vector_indexes`,
  /** Applications: named groups of components (applications.ts). */
  applications: `${PREFIX}applications`,
  /** Changed documents waiting for their outputs (one entry per listener and document). */
  queue: `${PREFIX}queue`,
  /** Backfill ranges claimed by a sidecar and not yet written. */
  backfill: `${PREFIX}backfill`,
  failures: `${PREFIX}failures`,
  sidecars: `${PREFIX}sidecars`,
  /** Model calls from the shell (the mongosh snippet's like() and embed()). */
  requests: `${PREFIX}requests`,
  /** Marks written by waitFor(): the capture notes when its change stream has passed one. */
  marks: `${PREFIX}marks`,
  /** A view: every listener version's status, for mongosh. */
  status: `${PREFIX}status`,
} as const;

/** The GridFS bucket of model files (superduper.files.files, superduper.files.chunks), by SHA-256. */
export const FILES_BUCKET = `${PREFIX}files`;

/** The view mongosh users $lookup into: always the current version's outputs. */
export function outputsView(listener: string): string {
  return `${PREFIX}outputs.${listener}`;
}

/** Where one version writes (the view points at the current one). */
export function outputsCollection(listener: string, version: number): string {
  return `${PREFIX}outputs.${listener}.v${version}`;
}

/** Collections the capture's change stream reads besides users' own (events of the rest are not sent). */
export const WATCHED_OWN = [COLLECTIONS.listeners, COLLECTIONS.marks, COLLECTIONS.components, COLLECTIONS.requests];
