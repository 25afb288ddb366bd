import { configurationFrom } from '../config.js';
import { bytesNamedByRow, type NamedBytes, type RowSourceRules } from '../models/row-source.js';

/** The largest document a sidecar fetches from a URL or reads from a file. */
export const MAX_DOCUMENT_BYTES = 50 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 30_000;

/** The operator's rules for documents a row names by text, the same as for images (row-source.ts), with their own variables. */
export function documentRules(env: NodeJS.ProcessEnv = process.env): RowSourceRules {
  const config = configurationFrom(env);
  return {
    noun: 'document',
    dir: config.documentDir,
    dirVariable: 'SUPERDUPER_DOCUMENT_DIR',
    allowUrls: config.allowDocumentUrls,
    urlVariable: 'SUPERDUPER_ALLOW_DOCUMENT_URLS',
    maxBytes: MAX_DOCUMENT_BYTES,
    timeoutMs: FETCH_TIMEOUT_MS,
    hint: 'a text column holding the text itself is chunked with source "text" (the default); with source "document", text names a file or URL',
  };
}

/**
 * The bytes of a document a row names by text, where the sidecar's operator allows it:
 * - SUPERDUPER_DOCUMENT_DIR: text is a file path inside that folder (relative to
 *   it, or absolute within it); a path that resolves outside it is refused;
 * - SUPERDUPER_ALLOW_DOCUMENT_URLS=1: text starting with http:// or https:// is fetched.
 */
export function documentBytesFor(subject: string, text: string, env: NodeJS.ProcessEnv = process.env): Promise<NamedBytes> {
  return bytesNamedByRow(subject, text, documentRules(env));
}
