import { backendMessage, mapErrorTexts, ProtocolViolation, type FrontendMessage } from './wire-protocol.js';
import { statements } from './sql-text.js';

const PARSE = 0x50;
const BIND = 0x42;
const DESCRIBE = 0x44;
const EXECUTE = 0x45;
const CLOSE = 0x43;

/**
 * Prepared statements and portals of one client of the embedded endpoint. The
 * one session has one namespace of statement names (and of portal names), which
 * every client would share, and which outlives the client that made a name:
 * pgJDBC's "S_1" from two connections collided (42P05). So the names a client
 * sends in Parse, Bind, Describe, Execute and Close are given its prefix on the
 * way in, and taken off again in error messages on the way out.
 *
 * The unnamed statement and portal get a name too (a client may Parse the
 * unnamed statement in one turn and Bind it in the next, with another client's
 * turn in between); since a named statement is not replaced by the next Parse
 * as the unnamed one is, a Close of the old one goes first, silently.
 */
export class ClientStatements {
  /** The backend names of the statements this client has prepared and not closed. */
  readonly #prepared = new Set<string>();

  constructor(private readonly prefix: string) {}

  /** The backend name of a client's statement or portal name. */
  scoped(kind: 'S' | 'P', name: string): string {
    return `${this.prefix}${kind === 'S' ? 's' : 'p'}_${name}`;
  }

  /**
   * The messages to send to PGlite for one extended-protocol message: `silent`
   * ones first (their answers are not the client's), then the message with its
   * names scoped. Throws ProtocolViolation for a malformed message. In a batch
   * run again (after a model call), a statement the first run prepared is
   * prepared anew: a prepared statement outlives the failed transaction.
   */
  scope(message: FrontendMessage, again = false): { silent: Buffer[]; message: Buffer } {
    const body = message.bytes.subarray(5);
    switch (message.type) {
      case PARSE: {
        const [name, rest] = cstring(body, 0);
        const scoped = this.scoped('S', name);
        const silent = name === '' || again ? [close('S', scoped)] : [];
        this.#prepared.add(scoped);
        return { silent, message: rebuild(message.type, [scoped], body.subarray(rest)) };
      }
      case BIND: {
        const [portal, afterPortal] = cstring(body, 0);
        const [statement, rest] = cstring(body, afterPortal);
        const scopedPortal = this.scoped('P', portal);
        const silent = portal === '' ? [close('P', scopedPortal)] : [];
        return { silent, message: rebuild(message.type, [scopedPortal, this.scoped('S', statement)], body.subarray(rest)) };
      }
      case DESCRIBE:
      case CLOSE: {
        const kind = String.fromCharCode(body[0] ?? 0);
        if (kind !== 'S' && kind !== 'P') throw new ProtocolViolation(`invalid ${message.type === CLOSE ? 'CLOSE' : 'DESCRIBE'} message subtype ${body[0]}`);
        const [name, rest] = cstring(body, 1);
        if (rest !== body.length) throw new ProtocolViolation('invalid message format');
        const scoped = this.scoped(kind, name);
        if (message.type === CLOSE && kind === 'S') this.#prepared.delete(scoped);
        return { silent: [], message: backendMessage(String.fromCharCode(message.type), Buffer.concat([Buffer.from(kind), Buffer.from(`${scoped}\0`, 'utf8')])) };
      }
      case EXECUTE: {
        const [portal, rest] = cstring(body, 0);
        if (body.length - rest !== 4) throw new ProtocolViolation('invalid message format');
        return { silent: [], message: rebuild(message.type, [this.scoped('P', portal)], body.subarray(rest)) };
      }
      default:
        return { silent: [], message: message.bytes };
    }
  }

  /** Error messages as the client would get them from a server: its own names. */
  unscope(answer: Buffer): Buffer {
    if (!answer.includes(this.prefix)) return answer;
    const pattern = new RegExp(`${escapeRegExp(this.prefix)}[sp]_`, 'g');
    return mapErrorTexts(answer, (text) => text.replace(pattern, ''));
  }

  /** Statements the client prepared and has not closed (to deallocate when it goes). */
  prepared(): string[] {
    return [...this.#prepared];
  }

  /** A DEALLOCATE ALL (or DISCARD ALL) of this client's own statements: they are gone. */
  forgetAll(): void {
    this.#prepared.clear();
  }
}

/** A null-terminated string at offset, and the offset after it. */
function cstring(body: Buffer, offset: number): [string, number] {
  const end = body.indexOf(0, offset);
  if (end < 0) throw new ProtocolViolation('invalid string in message');
  return [body.toString('utf8', offset, end), end + 1];
}

function rebuild(type: number, names: string[], rest: Buffer): Buffer {
  return backendMessage(String.fromCharCode(type), Buffer.concat([Buffer.from(names.map((name) => `${name}\0`).join(''), 'utf8'), rest]));
}

/** A Close message, for a statement or portal name as PGlite knows it. */
export function close(kind: 'S' | 'P', name: string): Buffer {
  return backendMessage('C', Buffer.concat([Buffer.from(kind), Buffer.from(`${name}\0`, 'utf8')]));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * DEALLOCATE [PREPARE] ALL or DISCARD ALL, alone in its SQL: the command, which
 * the endpoint carries out for the client's own statements (not everyone's).
 */
export function releasesAllStatements(sql: string): 'DEALLOCATE ALL' | 'DISCARD ALL' | undefined {
  const all = statements(sql);
  if (all.length !== 1) return undefined;
  const words = all[0]!.tokens.map((t) => (t.kind === 'word' ? t.text : ''));
  const said = words.join(' ');
  if (said === 'deallocate all' || said === 'deallocate prepare all') return 'DEALLOCATE ALL';
  if (said === 'discard all') return 'DISCARD ALL';
  return undefined;
}
