/**
 * Just enough of PostgreSQL's lexer for the embedded endpoint to know what a
 * client's SQL does before PGlite runs it: where its statements end, and which
 * words are words (not the inside of a string, a quoted identifier, a
 * dollar-quoted body or a comment). A regular expression gets these wrong
 * (`COPY "a;b" FROM STDIN`, `like('how to commit', ...)`, `CASE ... END`), and
 * some mistakes cost the session itself: a COPY FROM STDIN that reaches PGlite
 * without its data ends the database.
 */

export type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'param' | 'symbol';

export interface Token {
  kind: TokenKind;
  /** As written; for a word, folded to lower case as PostgreSQL folds identifiers. */
  text: string;
  start: number;
  end: number;
  /** Parentheses around it. */
  depth: number;
}

export interface Statement {
  /** Its text as the client wrote it, without the ending semicolon. */
  text: string;
  tokens: Token[];
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

/** The tokens of some SQL, comments and blanks left out. An unterminated string or comment runs to the end. */
export function tokens(sql: string): Token[] {
  const out: Token[] = [];
  let depth = 0;
  let i = 0;
  const push = (kind: TokenKind, start: number, end: number, text = sql.slice(start, end)) => out.push({ kind, text, start, end, depth });
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol + 1;
    } else if (c === '/' && next === '*') {
      i = blockCommentEnd(sql, i);
    } else if (c === "'") {
      const end = stringEnd(sql, i, false);
      push('string', i, end);
      i = end;
    } else if (c === '"') {
      const end = quotedEnd(sql, i, '"');
      push('quoted', i, end);
      i = end;
    } else if (c === '$' && next !== undefined && /[0-9]/.test(next)) {
      let end = i + 1;
      while (end < sql.length && /[0-9]/.test(sql[end]!)) end++;
      push('param', i, end);
      i = end;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close < 0 ? sql.length : close + tag[0].length;
        push('string', i, end);
        i = end;
      } else {
        push('symbol', i, i + 1);
        i++;
      }
    } else if (WORD_START.test(c)) {
      let end = i + 1;
      while (end < sql.length && WORD_PART.test(sql[end]!)) end++;
      const word = sql.slice(i, end);
      // E'...' takes backslash escapes; B'', X'', N'' and U&'' are strings too.
      if (sql[end] === "'" && /^[ebxn]$/i.test(word)) {
        const stringEnds = stringEnd(sql, end, /^e$/i.test(word));
        push('string', i, stringEnds);
        i = stringEnds;
      } else if (/^u$/i.test(word) && sql[end] === '&' && (sql[end + 1] === "'" || sql[end + 1] === '"')) {
        const quoteEnds = sql[end + 1] === "'" ? stringEnd(sql, end + 1, false) : quotedEnd(sql, end + 1, '"');
        push(sql[end + 1] === "'" ? 'string' : 'quoted', i, quoteEnds);
        i = quoteEnds;
      } else {
        push('word', i, end, word.toLowerCase());
        i = end;
      }
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      let end = i + 1;
      while (end < sql.length && /[0-9a-zA-Z_.]/.test(sql[end]!)) end++;
      push('number', i, end);
      i = end;
    } else {
      if (c === ')') depth = Math.max(0, depth - 1);
      push('symbol', i, i + 1);
      if (c === '(') depth++;
      i++;
    }
  }
  return out;
}

/**
 * The statements of some SQL, split at its semicolons; empty ones left out.
 * Remembered for the texts seen last: clients send the same statements again
 * and again (pgbench, a JDBC prepared statement), and each message is looked
 * at several times (COPY, settings, model calls, re-runs). Do not change what
 * it returns.
 */
export function statements(sql: string): readonly Statement[] {
  let known = recent.get(sql);
  if (known === undefined) {
    known = split(sql);
    if (recent.size >= RECENT_TEXTS) recent.clear();
    recent.set(sql, known);
  }
  return known;
}

const RECENT_TEXTS = 256;
const recent = new Map<string, readonly Statement[]>();

function split(sql: string): Statement[] {
  const out: Statement[] = [];
  let current: Token[] = [];
  const end = () => {
    if (current.length > 0) out.push({ text: sql.slice(current[0]!.start, current.at(-1)!.end), tokens: current });
    current = [];
  };
  for (const token of tokens(sql)) {
    if (token.kind === 'symbol' && token.text === ';') end();
    else current.push(token);
  }
  end();
  return out;
}

/** The first words of a statement (lower case), up to the first token that is not a word. */
export function leadingWords(statement: Statement, count: number): string[] {
  const words: string[] = [];
  for (const token of statement.tokens) {
    if (token.kind !== 'word' || words.length === count) break;
    words.push(token.text);
  }
  return words;
}

/** Whether a statement calls one of these functions (a word followed by an opening parenthesis). */
export function callsFunction(statement: Statement, names: ReadonlySet<string>): boolean {
  return statement.tokens.some((token, i) => token.kind === 'word' && names.has(token.text) && statement.tokens[i + 1]?.text === '(');
}

/** The identifier a quoted or plain token names, as PostgreSQL reads it. */
export function identifierOf(token: Token): string {
  return token.kind === 'quoted' ? token.text.slice(1, -1).replace(/""/g, '"') : token.text;
}

function stringEnd(sql: string, open: number, backslashEscapes: boolean): number {
  let i = open + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === "'" && sql[i + 1] === "'") i += 2;
    else if (c === "'") return i + 1;
    else i++;
  }
  return sql.length;
}

function quotedEnd(sql: string, open: number, quote: string): number {
  let i = open + 1;
  while (i < sql.length) {
    if (sql[i] === quote && sql[i + 1] === quote) i += 2;
    else if (sql[i] === quote) return i + 1;
    else i++;
  }
  return sql.length;
}

/** Block comments nest in PostgreSQL. */
function blockCommentEnd(sql: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}
