import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { SuperduperError } from '../errors.js';

/**
 * What a sidecar's operator allows a row to name by text, for one kind of
 * input (images, documents). A row is data anyone who can write the table
 * chose, so by default a sidecar opens nothing a row names.
 */
export interface RowSourceRules {
  /** What the bytes are, in messages: "image", "document". */
  noun: string;
  /** The folder file paths must resolve inside; unset: no file is read. */
  dir: string | undefined;
  /** The variable that sets `dir`, named in messages. */
  dirVariable: string;
  /** Whether http(s) URLs are fetched. */
  allowUrls: boolean;
  /** The variable that sets `allowUrls`, named in messages. */
  urlVariable: string;
  /** The most bytes read from a file or a response. */
  maxBytes: number;
  /** How long a fetch may take, body included. */
  timeoutMs: number;
  /** What to do instead, added to the error for text when neither files nor URLs are allowed. */
  hint?: string;
}

/** The bytes a row's text named, with what may tell their format. */
export interface NamedBytes {
  bytes: Uint8Array;
  /** The path as the row gave it, or the URL. */
  name: string;
  from: 'file' | 'url';
  /** The response's content-type, for a URL. */
  contentType?: string;
}

const article = (noun: string) => (/^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`);

/**
 * The bytes of what a row's text names, where the rules allow it:
 * - with `dir`, text is a file path inside that folder (relative to it, or
 *   absolute within it); a path that resolves outside it (.., symbolic links)
 *   is refused;
 * - with `allowUrls`, text starting with http:// or https:// is fetched.
 * `subject` names the model in messages, e.g. `transformers model "clip"`.
 */
export async function bytesNamedByRow(subject: string, text: string, rules: RowSourceRules): Promise<NamedBytes> {
  const { noun } = rules;
  if (/^https?:\/\//i.test(text)) {
    if (!rules.allowUrls) throw new Error(`${subject}: the row names ${article(noun)} by URL; sidecars fetch URLs only with ${rules.urlVariable}=1`);
    return fetchBytes(subject, text, rules);
  }
  if (!rules.dir) {
    throw new SuperduperError(
      `${subject} takes ${noun}s as bytes (a bytea column); got a string. ` +
        `Sidecars read file paths only inside ${rules.dirVariable}, and fetch URLs only with ${rules.urlVariable}=1`,
      rules.hint === undefined ? {} : { hint: rules.hint },
    );
  }
  let root: string;
  try {
    root = await realpath(rules.dir);
  } catch (error) {
    throw new Error(`${subject}: ${rules.dirVariable} (${rules.dir}) cannot be opened: ${codeOf(error)}; the sidecar's operator sets it to an existing folder`);
  }
  let path: string;
  try {
    path = await realpath(resolve(root, text));
  } catch (error) {
    throw new Error(`${subject}: cannot read ${noun} file "${text}": ${codeOf(error)}`);
  }
  const inside = relative(root, path);
  if (inside.startsWith('..') || isAbsolute(inside)) throw new Error(`${subject}: ${noun} file "${text}" is outside ${rules.dirVariable} (${root})`);
  // Checked before reading, so that a huge file is refused without being read.
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error(`${subject}: ${noun} file "${text}" is not a file`);
    if (info.size > rules.maxBytes) throw new Error(`${subject}: ${noun} file "${text}" is larger than ${rules.maxBytes} bytes`);
    bytes = await readFile(path);
  } catch (error) {
    if (!(error as NodeJS.ErrnoException).code) throw error;
    throw new Error(`${subject}: cannot read ${noun} file "${text}": ${codeOf(error)}`);
  }
  if (bytes.length > rules.maxBytes) throw new Error(`${subject}: ${noun} file "${text}" is larger than ${rules.maxBytes} bytes`);
  return { bytes, name: text, from: 'file' };
}

async function fetchBytes(subject: string, url: string, rules: RowSourceRules): Promise<NamedBytes> {
  const { noun, maxBytes } = rules;
  const tooLarge = () => new Error(`${subject}: ${noun} ${url} is larger than ${maxBytes} bytes`);
  // One signal for the request and the body: a server that sends its headers
  // and then trickles the body is cut off at the same deadline.
  const signal = AbortSignal.timeout(rules.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    throw new Error(`${subject}: cannot fetch ${noun} ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${subject}: fetching ${noun} ${url} got HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  // Read piece by piece: a response without a content-length is stopped at the limit, not buffered whole.
  const pieces: Uint8Array[] = [];
  let length = 0;
  try {
    if (response.body) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        length += value.length;
        if (length > maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge();
        }
        pieces.push(value);
      }
    }
  } catch (error) {
    if (length > maxBytes) throw error;
    throw new Error(`${subject}: cannot fetch ${noun} ${url}: ${(error as Error).message}`);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  const contentType = response.headers.get('content-type') ?? undefined;
  return contentType === undefined ? { bytes, name: url, from: 'url' } : { bytes, name: url, from: 'url', contentType };
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
