import { identifierOf, statements } from './sql-text.js';

/**
 * LISTEN/NOTIFY between the clients of the embedded endpoint. PGlite has one
 * session, so a NOTIFY is delivered during the turn of whichever client sent
 * it; the wire server keeps, per channel, the clients that said LISTEN, and
 * hands each notification to them, as a server's sessions would get it.
 */
export class ChannelRouter<Client> {
  readonly #clients = new Map<string, Set<Client>>();

  listen(client: Client, channel: string): void {
    let clients = this.#clients.get(channel);
    if (!clients) this.#clients.set(channel, (clients = new Set()));
    clients.add(client);
  }

  /** Stops a client listening on a channel, or on all ('*'); returns the channels it left. */
  unlisten(client: Client, channel: string): string[] {
    const left: string[] = [];
    for (const [name, clients] of this.#clients) {
      if ((channel === '*' || name === channel) && clients.delete(client)) left.push(name);
      if (clients.size === 0) this.#clients.delete(name);
    }
    return left;
  }

  /** A client gone. */
  drop(client: Client): void {
    this.unlisten(client, '*');
  }

  listeners(channel: string): ReadonlySet<Client> {
    return this.#clients.get(channel) ?? new Set();
  }

  /** Every channel some client listens on. */
  channels(): string[] {
    return [...this.#clients.keys()];
  }
}

/** One LISTEN or UNLISTEN statement: its channel as PostgreSQL names it, or '*'. */
export interface ListenStatement {
  listen: boolean;
  channel: string;
}

/**
 * The LISTEN and UNLISTEN statements of some SQL, in order. Unquoted channel
 * names fold to lower case, as PostgreSQL folds identifiers.
 */
export function listenStatements(sql: string): ListenStatement[] {
  const found: ListenStatement[] = [];
  for (const statement of statements(sql)) {
    const [verb, channel] = statement.tokens;
    if (verb?.kind !== 'word' || (verb.text !== 'listen' && verb.text !== 'unlisten') || channel === undefined) continue;
    found.push({ listen: verb.text === 'listen', channel: channel.text === '*' ? '*' : identifierOf(channel) });
  }
  return found;
}
