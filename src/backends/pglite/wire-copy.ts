import { statements, type Statement } from './sql-text.js';
import { backendMessage } from './wire-protocol.js';

/**
 * COPY ... FROM STDIN through the embedded endpoint. PGlite cannot resume a
 * COPY started in an earlier call: the CopyData and CopyDone (or CopyFail)
 * messages must reach it in the same call as the COPY itself (sent one call
 * each, they ended the database with "Program terminated with exit(1)"). So
 * the endpoint answers the client's COPY with the CopyInResponse itself,
 * gathers the data, and hands PGlite the COPY and its data in one call at the
 * end, dropping PGlite's own CopyInResponse from the answer. COPY ... TO
 * STDOUT needs nothing: PGlite answers it whole in one call.
 */

/** The largest COPY FROM STDIN taken (it is held in memory until its end). */
export const MAX_COPY_BYTES = 1024 * 1024 * 1024;

export interface CopyIn {
  /** The COPY statement as the client sent it (a Query message). */
  query: Buffer;
  /** The client's CopyData messages, then its CopyDone or CopyFail. */
  messages: Buffer[];
  bytes: number;
  /** Past MAX_COPY_BYTES: the COPY fails with this. */
  tooLarge: boolean;
}

export interface CopyFromStdin {
  /** The table as written (quoted or not, schema-qualified or not). */
  table: string;
  /** How many columns the statement lists, or undefined for all of the table's. */
  columns: number | undefined;
  binary: boolean;
  /** Whether it is the only statement of its SQL (it must be, on the embedded endpoint). */
  alone: boolean;
}

/** The COPY ... FROM STDIN among the statements of some SQL, or undefined when there is none. */
export function copyFromStdin(sql: string): CopyFromStdin | undefined {
  const all = statements(sql);
  for (const statement of all) {
    const copy = readsStdin(statement);
    if (copy) return { ...copy, alone: all.length === 1 };
  }
  return undefined;
}

/** COPY [BINARY] table [(columns)] FROM STDIN [[WITH] options]: what it reads, or undefined. */
function readsStdin(statement: Statement): Omit<CopyFromStdin, 'alone'> | undefined {
  const words = statement.tokens;
  if (words[0]?.kind !== 'word' || words[0].text !== 'copy') return undefined;
  const from = words.findIndex((t, i) => t.depth === 0 && t.kind === 'word' && t.text === 'from' && words[i + 1]?.kind === 'word' && words[i + 1]!.text === 'stdin');
  if (from < 0) return undefined;
  let first = 1;
  const oldBinary = words[1]?.kind === 'word' && words[1].text === 'binary';
  if (oldBinary) first = 2;
  const open = words.findIndex((t, i) => i >= first && i < from && t.depth === 0 && t.text === '(');
  const tableEnd = open < 0 ? from : open;
  if (tableEnd <= first) return undefined;
  const table = statement.text.slice(words[first]!.start - statement.tokens[0]!.start, words[tableEnd - 1]!.end - statement.tokens[0]!.start);
  let columns: number | undefined;
  if (open >= 0) {
    const inside = words.slice(open + 1, from).filter((t) => t.depth === 1 && t.text !== ')');
    columns = inside.length === 0 ? 0 : inside.filter((t) => t.text === ',').length + 1;
  }
  const options = words.slice(from + 2);
  const binary = oldBinary || options.some((t) => t.kind === 'word' && t.text === 'binary') || options.some((t) => t.kind === 'string' && /^'binary'$/i.test(t.text));
  return { table, columns, binary };
}

/** The CopyInResponse: the format (0 text or csv, 1 binary) and one format code per column. */
export function copyInResponse(binary: boolean, columns: number): Buffer {
  const body = Buffer.alloc(3 + 2 * columns);
  body.writeInt8(binary ? 1 : 0, 0);
  body.writeInt16BE(columns, 1);
  for (let i = 0; i < columns; i++) body.writeInt16BE(binary ? 1 : 0, 3 + 2 * i);
  return backendMessage('G', body);
}

/** The answer PGlite gave to the whole COPY, without its CopyInResponse (the client had the endpoint's). */
export function withoutCopyInResponse(answer: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= answer.length) {
    const length = answer.readInt32BE(offset + 1);
    if (answer[offset] !== 0x47) parts.push(answer.subarray(offset, offset + 1 + length));
    offset += 1 + length;
  }
  if (offset < answer.length) parts.push(answer.subarray(offset));
  return Buffer.concat(parts);
}

/** A CopyFail message (the endpoint's own, for a COPY too large to take). */
export function copyFail(reason: string): Buffer {
  return backendMessage('f', Buffer.from(`${reason}\0`, 'utf8'));
}
