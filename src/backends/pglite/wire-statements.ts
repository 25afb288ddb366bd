import { backendMessage, mapErrorTexts, ProtocolViolation, type FrontendMessage } from './wire-protocol.js';
import { statements } from './sql-text.js';

const PARSE = 0x50;
const BIND = 0x42;
const DESCRIBE = 0x44;
const EXECUTE = 0x45;
const CLOSE = 0x43;

/**
 * Prepared statements of one client of the embedded endpoint. The one session
 * has one namespace of statement names, which every client would share, and
 * which outlives the client that made a name: pgJDBC's "S_1" from two
 * connections collided (42P05). So the names a client gives statements in
 * Parse, Bind, Describe and Close get its prefix on the way in, and lose it
 * again in error messages on the way out.
 *
 * The unnamed statement stays PGlite's unnamed statement: clients send it with
 * its Bind in one batch (one turn), and when a batch binds or describes it
 * without parsing it, the client's last Parse of it is sent again first, since
 * another turn (a client's, or the host's own queries) may have replaced it.
 * Portals need nothing: they live until the end of their transaction, and a
 * client keeps the session until then.
 *
 * A batch goes to PGlite in one call (a call per message cost a third of the
 * throughput of prepared statements); what must go first, with answers the
 * client must not see, goes in calls of its own before it.
 */
export class ClientStatements {
  /** The backend names of the statements this client has prepared and not closed. */
  readonly #prepared = new Set<string>();
  /** The client's last Parse of the unnamed statement, to send again when a later batch binds it. */
  #unnamedParse: Buffer | undefined;

  constructor(private readonly prefix: string) {}

  /** The backend name of a client's statement name. */
  scoped(name: string): string {
    return name === '' ? '' : `${this.prefix}${name}`;
  }

  /**
   * What to send PGlite for a batch of the client's messages: calls to make
   * first, whose answers are dropped, then the batch itself, its statement
   * names scoped. In a batch run again (after a model call) the statements the
   * first run prepared are closed first: a prepared statement outlives the
   * failed transaction. Throws ProtocolViolation for a malformed message.
   */
  plan(messages: readonly FrontendMessage[], again: boolean): { first: Buffer[]; batch: Buffer } {
    const first: Buffer[] = [];
    const batch: Buffer[] = [];
    let unnamedParsed = false;
    for (const message of messages) {
      const body = message.bytes.subarray(5);
      switch (message.type) {
        case PARSE: {
          const [name, rest] = cstring(body, 0);
          if (name === '') {
            unnamedParsed = true;
            this.#unnamedParse = Buffer.from(message.bytes);
            batch.push(message.bytes);
            break;
          }
          const scoped = this.scoped(name);
          if (again) first.push(close('S', scoped));
          this.#prepared.add(scoped);
          batch.push(rebuild(message.type, [scoped], body.subarray(rest)));
          break;
        }
        case BIND: {
          const [portal, afterPortal] = cstring(body, 0);
          const [statement, rest] = cstring(body, afterPortal);
          if (statement === '' && !unnamedParsed) unnamedParsed = this.#replayUnnamed(first);
          batch.push(rebuild(message.type, [portal, this.scoped(statement)], body.subarray(rest)));
          break;
        }
        case DESCRIBE:
        case CLOSE: {
          const kind = String.fromCharCode(body[0] ?? 0);
          if (kind !== 'S' && kind !== 'P') throw new ProtocolViolation(`invalid ${message.type === CLOSE ? 'CLOSE' : 'DESCRIBE'} message subtype ${body[0]}`);
          const [name, rest] = cstring(body, 1);
          if (rest !== body.length) throw new ProtocolViolation('invalid message format');
          if (kind === 'P') {
            batch.push(message.bytes);
            break;
          }
          if (name === '' && message.type === DESCRIBE && !unnamedParsed) unnamedParsed = this.#replayUnnamed(first);
          const scoped = this.scoped(name);
          if (message.type === CLOSE) {
            this.#prepared.delete(scoped);
            if (name === '') this.#unnamedParse = undefined;
          }
          batch.push(backendMessage(String.fromCharCode(message.type), Buffer.concat([Buffer.from(kind), Buffer.from(`${scoped}\0`, 'utf8')])));
          break;
        }
        case EXECUTE: {
          const [, rest] = cstring(body, 0);
          if (body.length - rest !== 4) throw new ProtocolViolation('invalid message format');
          batch.push(message.bytes);
          break;
        }
        default:
          batch.push(message.bytes);
      }
    }
    return { first, batch: Buffer.concat(batch) };
  }

  /** Sends the client's unnamed statement again, before a batch that uses it without parsing it. */
  #replayUnnamed(first: Buffer[]): boolean {
    if (this.#unnamedParse === undefined) return false; // never parsed: the Bind fails as on a server
    first.push(this.#unnamedParse);
    return true;
  }

  /** Error messages as the client would get them from a server: its own names. */
  unscope(answer: Buffer): Buffer {
    if (!answer.includes(this.prefix)) return answer;
    const pattern = new RegExp(escapeRegExp(this.prefix), 'g');
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
