/**
 * Just enough of the PostgreSQL wire protocol (v3) for the embedded server to
 * frame what clients send and read what PGlite answers: message boundaries,
 * errors, notifications, command tags and the transaction status.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
export const PROTOCOL_3 = 196608;

/** A client message: `type` is 0 for the untyped first messages (startup, SSL, cancel). */
export interface FrontendMessage {
  type: number;
  bytes: Buffer;
}

/** A client that broke the protocol (or sent a login no server would take): its connection ends with this error. */
export class ProtocolViolation extends Error {
  constructor(
    message: string,
    readonly code = '08P01',
  ) {
    super(message);
  }
}

/** The frontend messages a client may send once started (protocol 3.0). */
export const FRONTEND_TYPES = new Set([
  0x51, // Query
  0x50, // Parse
  0x42, // Bind
  0x44, // Describe
  0x45, // Execute
  0x43, // Close
  0x53, // Sync
  0x48, // Flush
  0x58, // Terminate
  0x64, // CopyData
  0x63, // CopyDone
  0x66, // CopyFail
  0x46, // FunctionCall (answered with an error: not supported)
  0x70, // PasswordMessage and the like (answered with an error: no authentication here)
]);

/** The largest message taken from a client (a server's limit is 1 GB; COPY data comes in many messages). */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * Splits off the complete messages at the start of buffer. Before the startup
 * message, messages have no type byte. Returns the messages and what is left.
 * Throws ProtocolViolation for a length no message can have or a type no
 * client sends, so that garbage ends the client, never reaches PGlite.
 */
export function splitFrontend(buffer: Buffer, started: boolean): { messages: FrontendMessage[]; rest: Buffer; started: boolean } {
  const messages: FrontendMessage[] = [];
  let offset = 0;
  for (;;) {
    if (!started) {
      if (buffer.length - offset < 8) break;
      const length = buffer.readInt32BE(offset);
      if (length < 8 || length > 10_000) throw new ProtocolViolation(`invalid length of startup packet (${length})`);
      if (buffer.length - offset < length) break;
      const code = buffer.readInt32BE(offset + 4);
      messages.push({ type: 0, bytes: buffer.subarray(offset, offset + length) });
      offset += length;
      // After SSL/GSS requests (answered "N") the startup message follows, still untyped.
      if (code === PROTOCOL_3) started = true;
      continue;
    }
    if (buffer.length - offset < 5) break;
    const type = buffer[offset]!;
    if (!FRONTEND_TYPES.has(type)) throw new ProtocolViolation(`invalid frontend message type ${type}`);
    const length = buffer.readInt32BE(offset + 1);
    if (length < 4 || length > MAX_MESSAGE_BYTES) throw new ProtocolViolation(`invalid message length (${length})`);
    if (buffer.length - offset < length + 1) break;
    messages.push({ type, bytes: buffer.subarray(offset, offset + length + 1) });
    offset += length + 1;
  }
  return { messages, rest: buffer.subarray(offset), started };
}

/** The code of an untyped first message (startup protocol, SSL, GSS, cancel). */
export function untypedCode(message: FrontendMessage): number {
  return message.bytes.readInt32BE(4);
}

/** The SQL text of a Query ('Q') or Parse ('P') message, else ''. */
export function sqlOf(message: FrontendMessage): string {
  if (message.type === 0x51) return message.bytes.toString('utf8', 5, message.bytes.length - 1);
  if (message.type === 0x50) {
    const nameEnd = message.bytes.indexOf(0, 5);
    const textEnd = message.bytes.indexOf(0, nameEnd + 1);
    return message.bytes.toString('utf8', nameEnd + 1, textEnd);
  }
  return '';
}

export function simpleQuery(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const header = Buffer.alloc(5);
  header[0] = 0x51;
  header.writeInt32BE(text.length + 4, 1);
  return Buffer.concat([header, text]);
}

/** What one exchange with PGlite answered, read from its backend messages. */
export interface BackendSummary {
  /** The transaction status of the last ReadyForQuery: I (idle), T (in a block), E (failed block). */
  status: 'I' | 'T' | 'E' | undefined;
  /** ErrorResponse fields by code letter (C: SQLSTATE, M: message, D: detail...). */
  errors: Array<Record<string, string>>;
  notifications: Array<{ pid: number; channel: string; payload: string }>;
  /** CommandComplete tags: "INSERT 0 1", "UPDATE 3"... */
  tags: string[];
}

/** Reads backend messages; `keep` decides which go on to the client. */
export function readBackend(bytes: Uint8Array, keep: (type: number, message: Buffer) => boolean): { summary: BackendSummary; forward: Buffer } {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const summary: BackendSummary = { status: undefined, errors: [], notifications: [], tags: [] };
  const kept: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= buffer.length) {
    const type = buffer[offset]!;
    const length = buffer.readInt32BE(offset + 1);
    const message = buffer.subarray(offset, offset + 1 + length);
    const body = message.subarray(5);
    offset += 1 + length;
    switch (type) {
      case 0x5a: // ReadyForQuery
        summary.status = String.fromCharCode(body[0]!) as BackendSummary['status'];
        break;
      case 0x45: // ErrorResponse
        summary.errors.push(errorFields(body));
        break;
      case 0x43: // CommandComplete
        summary.tags.push(body.toString('utf8', 0, body.length - 1));
        break;
      case 0x41: {
        // NotificationResponse: int32 pid, channel, payload
        const channelEnd = body.indexOf(0, 4);
        const payloadEnd = body.indexOf(0, channelEnd + 1);
        summary.notifications.push({
          pid: body.readInt32BE(0),
          channel: body.toString('utf8', 4, channelEnd),
          payload: body.toString('utf8', channelEnd + 1, payloadEnd),
        });
        break;
      }
    }
    if (keep(type, message)) kept.push(message);
  }
  // Anything after the last whole message (there should be none) goes through as is.
  if (offset < buffer.length) kept.push(buffer.subarray(offset));
  return { summary, forward: Buffer.concat(kept) };
}

function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]!);
    const end = body.indexOf(0, offset + 1);
    fields[code] = body.toString('utf8', offset + 1, end);
    offset = end + 1;
  }
  return fields;
}

/** A NotificationResponse message. */
export function notificationResponse(note: { pid: number; channel: string; payload: string }): Buffer {
  const body = Buffer.from(`${note.channel}\0${note.payload}\0`, 'utf8');
  const header = Buffer.alloc(9);
  header[0] = 0x41;
  header.writeInt32BE(body.length + 8, 1);
  header.writeInt32BE(note.pid, 5);
  return Buffer.concat([header, body]);
}

/** The parameters of a startup message (user, database, application_name...). */
export function startupParameters(message: FrontendMessage): Record<string, string> {
  const parameters: Record<string, string> = {};
  const bytes = message.bytes;
  let offset = 8;
  while (offset < bytes.length && bytes[offset] !== 0) {
    const keyEnd = bytes.indexOf(0, offset);
    const valueEnd = bytes.indexOf(0, keyEnd + 1);
    parameters[bytes.toString('utf8', offset, keyEnd)] = bytes.toString('utf8', keyEnd + 1, valueEnd);
    offset = valueEnd + 1;
  }
  return parameters;
}

/** An ErrorResponse message (severity, SQLSTATE, message, hint), e.g. to refuse a login. */
export function errorResponse(severity: string, code: string, message: string, hint?: string): Buffer {
  const fields = Buffer.from(`S${severity}\0V${severity}\0C${code}\0M${message}\0${hint ? `H${hint}\0` : ''}\0`, 'utf8');
  const header = Buffer.alloc(5);
  header[0] = 0x45;
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

/** A backend message: type byte, length, body. */
export function backendMessage(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header[0] = type.charCodeAt(0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

export function authenticationOk(): Buffer {
  return backendMessage('R', Buffer.from([0, 0, 0, 0]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return backendMessage('S', Buffer.from(`${name}\0${value}\0`, 'utf8'));
}

export function backendKeyData(pid: number, secret: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(pid, 0);
  body.writeInt32BE(secret, 4);
  return backendMessage('K', body);
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return backendMessage('Z', Buffer.from(status));
}

/** The fields of a CancelRequest (pid and secret of the connection to cancel). */
export function cancelTarget(message: FrontendMessage): { pid: number; secret: number } | undefined {
  if (message.bytes.length < 16) return undefined;
  return { pid: message.bytes.readInt32BE(8), secret: message.bytes.readInt32BE(12) };
}

/** Rewrites the text fields of ErrorResponse and NoticeResponse messages (the rest goes through as is). */
export function mapErrorTexts(bytes: Buffer, map: (text: string) => string): Buffer {
  const out: Buffer[] = [];
  let offset = 0;
  let changed = false;
  while (offset + 5 <= bytes.length) {
    const type = bytes[offset]!;
    const length = bytes.readInt32BE(offset + 1);
    const message = bytes.subarray(offset, offset + 1 + length);
    offset += 1 + length;
    if (type !== 0x45 && type !== 0x4e) {
      out.push(message);
      continue;
    }
    const fields = errorFieldList(message.subarray(5));
    const mapped = fields.map(([code, text]) => [code, code === 'C' || code === 'S' || code === 'V' ? text : map(text)] as const);
    if (mapped.every(([, text], i) => text === fields[i]![1])) {
      out.push(message);
      continue;
    }
    changed = true;
    out.push(backendMessage(String.fromCharCode(type), Buffer.from(`${mapped.map(([code, text]) => `${code}${text}\0`).join('')}\0`, 'utf8')));
  }
  if (offset < bytes.length) out.push(bytes.subarray(offset));
  return changed ? Buffer.concat(out) : bytes;
}

function errorFieldList(body: Buffer): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]!);
    const end = body.indexOf(0, offset + 1);
    fields.push([code, body.toString('utf8', offset + 1, end)]);
    offset = end + 1;
  }
  return fields;
}
