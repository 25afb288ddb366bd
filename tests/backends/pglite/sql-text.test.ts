// How the embedded endpoint reads a client's SQL before PGlite runs it (no
// database needed): statement boundaries and words, never the inside of strings,
// quoted identifiers, dollar-quoted bodies or comments.
import { describe, expect, it } from 'vitest';
import { mayCallModel, rerunnable } from '../../../src/backends/pglite/model-call-error.js';
import { changesSettings } from '../../../src/backends/pglite/session-settings.js';
import { statements } from '../../../src/backends/pglite/sql-text.js';
import { copyFromStdin } from '../../../src/backends/pglite/wire-copy.js';
import { releasesAllStatements } from '../../../src/backends/pglite/wire-statements.js';

describe('statements', () => {
  it('splits at semicolons that end statements, not at those inside quotes, bodies or comments', () => {
    const sql = `SELECT 'a;b', "c;d" FROM t; -- x;y\nDO $body$ BEGIN PERFORM 1; END $body$; /* p; /* nested; */ q; */ SELECT E'it\\'s;', $1;;`;
    expect(statements(sql).map((s) => s.text)).toEqual([`SELECT 'a;b', "c;d" FROM t`, `DO $body$ BEGIN PERFORM 1; END $body$`, `SELECT E'it\\'s;', $1`]);
  });

  it('folds words to lower case and leaves an unterminated string to the end', () => {
    const [statement] = statements(`SeLeCt 'open; string`);
    expect(statement!.tokens.map((t) => [t.kind, t.text])).toEqual([
      ['word', 'select'],
      ['string', `'open; string`],
    ]);
  });
});

describe('copyFromStdin', () => {
  it('finds the table of a COPY FROM STDIN whatever its name holds', () => {
    expect(copyFromStdin(`COPY "Copy; ""Notes""" FROM STDIN csv`)).toEqual({ table: '"Copy; ""Notes"""', columns: undefined, binary: false, alone: true });
    expect(copyFromStdin(`copy /* c */ public."T" (a, "b;c") from stdin with (format binary);`)).toEqual({
      table: 'public."T"',
      columns: 2,
      binary: true,
      alone: true,
    });
    expect(copyFromStdin(`COPY BINARY t FROM STDIN`)).toMatchObject({ table: 't', binary: true });
  });

  it('sees a COPY FROM STDIN among other statements, and no other COPY', () => {
    expect(copyFromStdin(`SELECT 1; COPY t FROM STDIN`)).toMatchObject({ table: 't', alone: false });
    expect(copyFromStdin(`COPY (SELECT * FROM stdin) TO STDOUT`)).toBeUndefined();
    expect(copyFromStdin(`COPY t TO STDOUT`)).toBeUndefined();
    expect(copyFromStdin(`SELECT 'COPY t FROM STDIN'`)).toBeUndefined();
    expect(copyFromStdin(`COPY t FROM '/tmp/file'`)).toBeUndefined();
  });
});

describe('what a statement may do', () => {
  it('a model call is a call of like, embed or predict, not the word in a string', () => {
    expect(mayCallModel(`SELECT * FROM superduper.like('i', 'q', 3)`)).toBe(true);
    expect(mayCallModel(`SELECT superduper.embed ('m', 'q')`)).toBe(true);
    expect(mayCallModel(`SELECT 'like(' FROM t WHERE a LIKE 'x%'`)).toBe(false);
  });

  it('only transaction control makes SQL not re-runnable: not the words in a search text or CASE ... END', () => {
    expect(rerunnable(`SELECT * FROM superduper.like('i', 'how to commit and rollback', 3)`)).toBe(true);
    expect(rerunnable(`SELECT CASE WHEN true THEN 1 END`)).toBe(true);
    expect(rerunnable(`INSERT INTO t VALUES (1); COMMIT; SELECT superduper.embed('m', 'x')`)).toBe(false);
    expect(rerunnable(`SAVEPOINT a`)).toBe(false);
    expect(rerunnable(`PREPARE TRANSACTION 'x'`)).toBe(false);
    expect(rerunnable(`DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$`)).toBe(false);
    expect(rerunnable(`DO $$ BEGIN PERFORM 1; END $$`)).toBe(true);
    expect(rerunnable(`CALL my_procedure()`)).toBe(false);
  });

  it('settings change with SET, RESET, DISCARD and set_config, wherever comments put them', () => {
    expect(changesSettings(`/* first */ SET search_path = x`)).toBe(true);
    expect(changesSettings(`SELECT 1; reset all`)).toBe(true);
    expect(changesSettings(`SELECT pg_catalog.set_config('a.b', 'c', false)`)).toBe(true);
    expect(changesSettings(`UPDATE t SET a = 1`)).toBe(false);
    expect(changesSettings(`SELECT 'SET x = 1'`)).toBe(false);
  });

  it('DEALLOCATE ALL and DISCARD ALL alone in their SQL', () => {
    expect(releasesAllStatements('deallocate prepare all;')).toBe('DEALLOCATE ALL');
    expect(releasesAllStatements(' DISCARD ALL ')).toBe('DISCARD ALL');
    expect(releasesAllStatements('DEALLOCATE "all"')).toBeUndefined();
    expect(releasesAllStatements('DISCARD ALL; SELECT 1')).toBeUndefined();
  });
});
