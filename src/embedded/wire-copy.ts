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

/** What a COPY ... FROM STDIN statement reads, or undefined for any other statement. */
export function copyFromStdin(sql: string): { table: string; columns: string | undefined; binary: boolean } | undefined {
  const statement = sql.trim().replace(/;\s*$/, '');
  if (statement.includes(';')) return undefined; // the COPY must be the statement's only one (see wire-server.ts)
  const match = /^copy\s+((?:"(?:[^"]|"")*"|[^\s(])+)\s*(\(([^)]*)\))?\s+from\s+stdin\b(.*)$/is.exec(statement);
  if (!match) return undefined;
  return { table: match[1]!, columns: match[3], binary: /\bbinary\b/i.test(match[4] ?? '') };
}

/** Whether one of the statements of SQL is a COPY FROM STDIN (a COPY among others, or in a Parse). */
export function hasCopyFromStdin(sql: string): boolean {
  return sql.split(';').some((statement) => /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i.test(statement));
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
