/**
 * MongoDB wire-protocol framing: OP_MSG both ways, OP_QUERY in (the driver and
 * mongosh send their first hello that way) answered with OP_REPLY.
 */
import { deserialize } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const CHECKSUM_PRESENT = 1 << 0;
export const MORE_TO_COME = 1 << 1;

/** Larger than the advertised maxMessageSizeBytes, so a client's biggest legal batch fits. */
export const MAX_MESSAGE_BYTES = 48_000_000 + 16 * 1024 * 1024;

export type Doc = Record<string, unknown>;

export interface MsgRequest {
  kind: 'msg';
  requestId: number;
  moreToCome: boolean;
  body: Doc;
  /** Kind-1 sections: identifier → the raw BSON of each document, as sent. */
  sequences: Map<string, Buffer[]>;
}

export interface QueryRequest {
  kind: 'query';
  requestId: number;
  collection: string;
  query: Doc;
}

export type Request = MsgRequest | QueryRequest;

export class ProtocolError extends Error {}

/** Splits a byte stream into whole messages. */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    while (this.buffered >= 4) {
      // Reading the length must not concatenate: a 48 MB batch arrives in many chunks.
      const first = this.chunks[0] as Buffer;
      const head = first.length >= 4 ? first : this.flatten();
      const size = head.readInt32LE(0);
      if (size < 16 || size > MAX_MESSAGE_BYTES) throw new ProtocolError(`bad message length ${size}`);
      if (this.buffered < size) break;
      const all = this.flatten();
      out.push(all.subarray(0, size));
      const rest = all.subarray(size);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
    return out;
  }

  private flatten(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] as Buffer;
  }
}

function readCString(buf: Buffer, at: number): [string, number] {
  const end = buf.indexOf(0, at);
  if (end < 0) throw new ProtocolError('unterminated cstring');
  return [buf.toString('utf8', at, end), end + 1];
}

export function parseRequest(msg: Buffer): Request {
  const requestId = msg.readInt32LE(4);
  const opCode = msg.readInt32LE(12);
  if (opCode === OP_MSG) {
    const flags = msg.readUInt32LE(16);
    const end = flags & CHECKSUM_PRESENT ? msg.length - 4 : msg.length;
    let at = 20;
    let body: Doc | undefined;
    const sequences = new Map<string, Buffer[]>();
    while (at < end) {
      const kind = msg[at];
      at += 1;
      if (kind === 0) {
        const size = msg.readInt32LE(at);
        body = deserialize(msg.subarray(at, at + size)) as Doc;
        at += size;
      } else if (kind === 1) {
        const size = msg.readInt32LE(at);
        const stop = at + size;
        const [id, docsAt] = readCString(msg, at + 4);
        const docs: Buffer[] = [];
        for (let p = docsAt; p < stop; ) {
          const n = msg.readInt32LE(p);
          docs.push(msg.subarray(p, p + n));
          p += n;
        }
        sequences.set(id, docs);
        at = stop;
      } else {
        throw new ProtocolError(`unknown OP_MSG section kind ${kind}`);
      }
    }
    if (!body) throw new ProtocolError('OP_MSG without a body section');
    return { kind: 'msg', requestId, moreToCome: (flags & MORE_TO_COME) !== 0, body, sequences };
  }
  if (opCode === OP_QUERY) {
    const [collection, afterName] = readCString(msg, 20);
    const at = afterName + 8; // numberToSkip, numberToReturn: meaningless for commands
    const size = msg.readInt32LE(at);
    let query = deserialize(msg.subarray(at, at + size)) as Doc;
    // A read preference for mongos wraps the command in $query.
    if (query.$query && typeof query.$query === 'object') query = query.$query as Doc;
    return { kind: 'query', requestId, collection, query };
  }
  if (opCode === OP_COMPRESSED) throw new ProtocolError('OP_COMPRESSED received, but no compressor was offered');
  throw new ProtocolError(`unsupported opCode ${opCode}`);
}

let nextResponseId = 1;

function header(size: number, responseTo: number, opCode: number): Buffer {
  const h = Buffer.allocUnsafe(16);
  h.writeInt32LE(size, 0);
  h.writeInt32LE(nextResponseId++ & 0x7fffffff, 4);
  h.writeInt32LE(responseTo, 8);
  h.writeInt32LE(opCode, 12);
  return h;
}

export function encodeMsgReply(responseTo: number, body: Buffer): Buffer {
  const flagsAndKind = Buffer.alloc(5); // flags 0, section kind 0
  return Buffer.concat([header(16 + 5 + body.length, responseTo, OP_MSG), flagsAndKind, body]);
}

export function encodeOpReply(responseTo: number, doc: Buffer): Buffer {
  const fields = Buffer.alloc(20);
  fields.writeInt32LE(8, 0); // AwaitCapable, as servers set
  // cursorID 0 (8 bytes), startingFrom 0
  fields.writeInt32LE(1, 16); // numberReturned
  return Buffer.concat([header(16 + 20 + doc.length, responseTo, OP_REPLY), fields, doc]);
}
