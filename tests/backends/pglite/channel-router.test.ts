// How the embedded endpoint reads LISTEN and UNLISTEN statements (no database needed).
import { describe, expect, it } from 'vitest';
import { ChannelRouter, listenStatements } from '../../../src/backends/pglite/channel-router.js';

describe('listenStatements', () => {
  it('folds unquoted names to lower case and keeps quoted ones, as PostgreSQL does', () => {
    expect(listenStatements('LISTEN News')).toEqual([{ listen: true, channel: 'news' }]);
    expect(listenStatements('listen "Mixed ""Case"""')).toEqual([{ listen: true, channel: 'Mixed "Case"' }]);
  });

  it('reads every statement of a script, after comments, and UNLISTEN *', () => {
    const sql = `-- wake me\nLISTEN a; /* and */ UNLISTEN b;\n  UNLISTEN *; SELECT 'LISTEN c'`;
    expect(listenStatements(sql)).toEqual([
      { listen: true, channel: 'a' },
      { listen: false, channel: 'b' },
      { listen: false, channel: '*' },
    ]);
  });

  it('ignores statements that only mention the word', () => {
    expect(listenStatements(`SELECT 'LISTEN x'; INSERT INTO t VALUES ('UNLISTEN y')`)).toEqual([]);
  });
});

describe('ChannelRouter', () => {
  it('keeps the clients per channel, and UNLISTEN * or a disconnect removes them', () => {
    const router = new ChannelRouter<string>();
    router.listen('a', 'news');
    router.listen('b', 'news');
    router.listen('a', 'sport');
    expect([...router.listeners('news')]).toEqual(['a', 'b']);
    expect(router.unlisten('a', '*').sort()).toEqual(['news', 'sport']);
    expect([...router.listeners('news')]).toEqual(['b']);
    expect(router.channels()).toEqual(['news']);
    router.drop('b');
    expect(router.channels()).toEqual([]);
  });
});
