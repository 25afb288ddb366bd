import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import type { Chunk } from '../../../src/chunking/types.js';
import { createTestStore, type TestStore } from '../../helpers/stores.js';

// A chunker is a model like any other: a listener keeps each row's chunks (a
// jsonb list, with spans and heading paths) current, on every backend. One
// output row per chunk (PostgreSQL only, for now): ../documents/.
let store: TestStore;

beforeEach(async () => {
  store = await createTestStore('any_chunkers');
});

afterEach(async () => {
  await store?.close();
});

const guide = '# Install\n\nRun the installer. It takes a minute.\n\n## On Debian\n\napt-get install superduper, then make demo.';

describe('chunkers', () => {
  it('a listener keeps the chunks of each row, each chunk a slice of its text with its heading path', async () => {
    await store.createSource('pages', { body: 'text' }, [
      { id: 1, body: guide },
      { id: 2, body: 'A short page.' },
    ]);
    await store.db.apply(
      chunkerModel({ name: 'sections', method: 'markdown', size: 60, overlap: 10, flatten: false }),
      listener({ name: 'page_chunks', model: 'sections', ...store.on('pages'), keys: ['body'] }),
    );
    await store.db.start({ reconcileMs: 100 });
    await store.db.waitFor('page_chunks', { timeoutMs: 20_000 });

    const outputs = await store.outputs('page_chunks');
    const first = outputs.get(1) as Chunk[];
    expect(first.map((c) => c.headings)).toEqual([['Install'], ['Install', 'On Debian']]);
    for (const chunk of first) expect(guide.slice(chunk.start, chunk.end)).toBe(chunk.text);
    expect(outputs.get(2)).toEqual([{ text: 'A short page.', start: 0, end: 13, headings: [] }]);

    await store.update('pages', [2], { body: 'Now longer: one sentence here. And another one, to split the page in two.' });
    await store.db.waitFor('page_chunks', { timeoutMs: 20_000 });
    expect(((await store.outputs('page_chunks')).get(2) as Chunk[]).length).toBe(2);
  });

  it('refuses a bad config when declared, saying what is expected', () => {
    expect(() => chunkerModel({ name: 'c', method: 'sentences' as 'recursive', size: 10 })).toThrow(/chunker "c": method must be "recursive" or "markdown" \(got "sentences"\)/);
    expect(() => chunkerModel({ name: 'c', method: 'recursive', size: 0 })).toThrow(/chunker "c": size must be a positive integer \(got 0\)/);
    expect(() => chunkerModel({ name: 'c', method: 'recursive', size: 10, overlap: 10 })).toThrow(/overlap must be an integer from 0 to less than size 10/);
  });
});
