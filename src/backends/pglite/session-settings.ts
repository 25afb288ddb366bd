import { callsFunction, leadingWords, statements } from './sql-text.js';

/**
 * The run-time settings (GUCs) of the embedded database's one session, worn by
 * whoever has the turn. Each client of the wire endpoint has its own settings
 * (its startup parameters and what it SET since); the process hosting the
 * database has the defaults. Before a turn the session is made to wear the
 * settings of whoever takes it: only what differs from what it wears now is
 * set, in one statement, so clients with the same settings (every pgbench or
 * JDBC connection, say) switch turns for nothing.
 */
type Exec = (sql: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;

export type Settings = ReadonlyMap<string, string>;

export const DEFAULT_SETTINGS: Settings = new Map();

/** Settings that are not a client's to keep: roles are handled per turn, superduper.wait is used once. */
const NOT_KEPT = ['session_authorization', 'role', 'superduper.wait', 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable'];

const SETTING_STATEMENTS: ReadonlySet<string> = new Set(['set', 'reset', 'discard']);
const SET_CONFIG: ReadonlySet<string> = new Set(['set_config']);

/**
 * Whether SQL may change session settings (and so must be looked at after it
 * ran): SET, RESET, DISCARD, or a call of set_config. (A function that calls
 * set_config inside is not seen.)
 */
export function changesSettings(sql: string): boolean {
  return statements(sql).some((statement) => SETTING_STATEMENTS.has(leadingWords(statement, 1)[0] ?? '') || callsFunction(statement, SET_CONFIG));
}

export class SessionSettings {
  /** What the session wears beyond the defaults. */
  #worn: Settings = DEFAULT_SETTINGS;

  constructor(private readonly exec: Exec) {}

  /** Makes the session wear these settings (and the defaults for every other). */
  async wear(wanted: Settings): Promise<void> {
    const names: string[] = [];
    const values: Array<string | null> = [];
    for (const [name, value] of wanted) {
      if (this.#worn.get(name) !== value) {
        names.push(name);
        values.push(value);
      }
    }
    for (const name of this.#worn.keys()) {
      if (!wanted.has(name)) {
        names.push(name);
        values.push(null);
      }
    }
    if (names.length === 0) return;
    await this.exec(
      `SELECT pg_catalog.set_config(x.name, coalesce(x.value, s.reset_val, ''), false)
       FROM unnest($1::text[], $2::text[]) AS x(name, value) LEFT JOIN pg_catalog.pg_settings AS s ON s.name = x.name`,
      [names, values],
    );
    this.#worn = wanted;
  }

  /** The settings the session wears now, as set in it (after a turn that may have changed them). */
  async capture(): Promise<Map<string, string>> {
    const result = await this.exec(
      `SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session' AND name <> ALL ($1::text[])`,
      [NOT_KEPT],
    );
    const captured = new Map(result.rows.map((row) => [String(row.name), String(row.setting)]));
    this.#worn = captured;
    return captured;
  }

  /** Forgets what is worn (the session was reset by other means). */
  forget(): void {
    this.#worn = DEFAULT_SETTINGS;
  }
}

/**
 * The settings in a startup message: every parameter but the connection's own
 * (user, database, replication, protocol options), and the `-c name=value`
 * (or `--name=value`) pairs of `options`, as a server takes them.
 */
export function startupSettings(parameters: Record<string, string>): Map<string, string> {
  const settings = new Map<string, string>();
  for (const [name, value] of Object.entries(parameters)) {
    if (['user', 'database', 'replication', 'options'].includes(name) || name.startsWith('_pq_.')) continue;
    settings.set(name, value);
  }
  const words = splitOptions(parameters.options ?? '');
  for (let i = 0; i < words.length; i++) {
    let pair: string | undefined;
    if (words[i] === '-c') pair = words[++i];
    else if (words[i]!.startsWith('-c')) pair = words[i]!.slice(2);
    else if (words[i]!.startsWith('--')) pair = words[i]!.slice(2);
    if (!pair) continue;
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    settings.set(pair.slice(0, equals).replace(/-/g, '_'), pair.slice(equals + 1));
  }
  return settings;
}

/** Splits `options` on whitespace, a backslash escaping the next character (as the server does). */
function splitOptions(options: string): string[] {
  const words: string[] = [];
  let word = '';
  let escaped = false;
  for (const char of options) {
    if (escaped) {
      word += char;
      escaped = false;
    } else if (char === '\\') escaped = true;
    else if (/\s/.test(char)) {
      if (word) words.push(word);
      word = '';
    } else word += char;
  }
  if (word) words.push(word);
  return words;
}
