/**
 * The whole documents path (chunker listener, flattened outputs, a chained
 * embedding listener, a vector index with full-text search, hybrid(), rag())
 * on names that break naive SQL: a schema, table, key columns, listeners,
 * models and an index named with quotes, spaces, capitals and semicolons, and
 * a composite primary key whose text part holds a quote. Every hit's key must
 * lead back to its chunk, a filter on a hostile column must hold, and rag()
 * must cite the passage it was given.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openaiChat } from '../../../src/components/api-model.js';
import { splitRecursive } from '../../../src/chunking/recursive.js';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { standInAnswer } from '../../../src/demo/stand-in-llm.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { quoteIdent } from '../../../src/identifiers.js';
import { startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { countingFeatureModel, features } from '../../helpers/models.js';

const SCHEMA = 'Odd "Schema"; x';
const TABLE = 'My "Docs"; DROP TABLE x; --';
const DOC_ID = 'Doc "Id"; --';
const PART = 'Part No';
const BODY = 'Body Text; --';
const CHUNKER = 'Odd chunker; "x"';
const CHUNKS = 'Odd "chunks"; drop';
const VECTORS = 'Chunk "Vectors"; x';
const INDEX = 'Idx "hybrid"; --';
const LLM = 'LLM "stand-in"; x';
const EMBEDDER = 'Feat "embed"; x';
const CHAT = 'Chat "api"; --';

const source = `${quoteIdent(SCHEMA)}.${quoteIdent(TABLE)}`;
const chunksTable = `superduper.${quoteIdent(`out_${CHUNKS}`)}`;
const vectorsTable = `superduper.${quoteIdent(`out_${VECTORS}`)}`;
// Each paragraph a chunk of its own (the stand-in LLM reads a passage up to a blank line).
const SIZE = 65;

// Documents whose passages each hold words found in no other, so that a
// question built from them has one right passage.
const DOCS: Array<{ id: string; part: number; body: string }> = [
  { id: "a'b", part: 1, body: 'Backups run nightly at two.\n\nThe walrus archive keeps backups for ninety days.\n\nRestores need an operator ticket.' },
  { id: "a'b", part: 2, body: 'Passwords reset through the portal.\n\nThe pelican gateway locks an account after five failures.' },
  { id: 'c"d; --', part: 1, body: 'Upgrades happen on Sundays.\n\nThe narwhal cluster upgrades one replica at a time, never two.' },
  { id: 'plain', part: 7, body: 'Invoices are monthly.\n\nThe ocelot ledger rounds amounts to whole cents.' },
];

let database: TestDatabase;
let server: ApiServer;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeAll(async () => {
  process.env.HOSTILE_RAG_KEY = 'hostile-key';
  server = await startApiServer({ key: 'hostile-key' });
  server.reply = (message) => standInAnswer(message);
  database = await createTestDatabase('hostile_rag');
  db = await connectTest(database);
  await q(`CREATE SCHEMA ${quoteIdent(SCHEMA)}`);
  await q(`CREATE TABLE ${source} (${quoteIdent(DOC_ID)} text, ${quoteIdent(PART)} int, ${quoteIdent(BODY)} text, "UPPER" text,
           PRIMARY KEY (${quoteIdent(DOC_ID)}, ${quoteIdent(PART)}))`);
  for (const doc of DOCS) await q(`INSERT INTO ${source} VALUES ($1, $2, $3, 'x')`, [doc.id, doc.part, doc.body]);
  await db.apply(
    chunkerModel({ name: CHUNKER, method: 'recursive', size: SIZE }),
    listener({ name: CHUNKS, model: CHUNKER, schema: SCHEMA, table: TABLE, keys: [BODY], filter: `"UPPER" <> 'skip; me'` }),
    countingFeatureModel(EMBEDDER),
    listener({ name: VECTORS, model: EMBEDDER, schema: 'superduper', table: `out_${CHUNKS}`, keys: ['output'] }),
    vectorIndex({ name: INDEX, listener: VECTORS, fullText: 'english' }),
    functionModel({ name: LLM, output: { type: 'text' }, version: '1', predict: (prompts: string[]) => prompts.map(standInAnswer) }),
    openaiChat({ name: CHAT, model: 'stand-in', baseUrl: `${server.url}/v1`, apiKeyEnv: 'HOSTILE_RAG_KEY' }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor(VECTORS, { timeoutMs: 30_000 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await server?.close();
});

interface Chunk {
  id: string;
  part: number;
  position: number;
  output: string;
}

async function chunks(): Promise<Chunk[]> {
  return (await q(
    `SELECT ${quoteIdent(DOC_ID)} AS id, ${quoteIdent(PART)} AS part, _position AS position, output FROM ${chunksTable}
     ORDER BY ${quoteIdent(DOC_ID)} COLLATE "C", 2, 3`,
  )) as Chunk[];
}

/** What the chunker gives each document of the table now, by key. */
async function expectedChunks(): Promise<Chunk[]> {
  const rows = await q(`SELECT ${quoteIdent(DOC_ID)} AS id, ${quoteIdent(PART)} AS part, ${quoteIdent(BODY)} AS body FROM ${source} ORDER BY ${quoteIdent(DOC_ID)} COLLATE "C", 2`);
  return rows.flatMap((row) => splitRecursive(row.body ?? '', { size: SIZE }).map((c, position) => ({ id: row.id, part: row.part, position, output: c.text })));
}

/** A hit's key (document id, part, position) and the chunk it names; fails on a key that names none. */
function chunkOf(all: Chunk[], key: string[]): Chunk {
  expect(key).toHaveLength(3);
  const found = all.find((c) => c.id === key[0] && String(c.part) === key[1] && String(c.position) === key[2]);
  expect(found, `a hit's key ${JSON.stringify(key)} names a chunk`).toBeDefined();
  return found!;
}

describe('documents to answers, on hostile names and a composite key', () => {
  it('chunks each document as the chunker does, and embeds every chunk once', async () => {
    const all = await chunks();
    expect(all).toEqual(await expectedChunks());
    expect(all.length).toBeGreaterThan(DOCS.length);
    const vectors = await q(
      `SELECT c.output, v.output::text AS vector FROM ${chunksTable} c
       LEFT JOIN ${vectorsTable} v USING (${quoteIdent(DOC_ID)}, ${quoteIdent(PART)}, _position)`,
    );
    expect(vectors).toHaveLength(all.length);
    for (const row of vectors) expect(JSON.parse(row.vector)).toEqual(features(row.output));
    expect(await q(`SELECT count(*)::int AS n FROM ${vectorsTable}`)).toEqual([{ n: all.length }]);
  });

  it('hybrid() finds a passage by its words, and its key leads back to the chunk', async () => {
    const all = await chunks();
    const hits = await q(`SELECT key, text_rank, vector_rank FROM superduper.hybrid($1, 'walrus archive', 5)`, [INDEX]);
    expect(hits.length).toBe(5);
    const best = chunkOf(all, hits[0].key);
    expect(best).toMatchObject({ id: "a'b", part: 1 });
    expect(best.output).toMatch(/walrus/);
    expect(hits[0].text_rank).toBe(1);
    for (const hit of hits) chunkOf(all, hit.key);
    // like() on the same index gives keys of the same shape.
    for (const hit of await q(`SELECT key FROM superduper.like($1, 'narwhal replica', 4)`, [INDEX])) chunkOf(all, hit.key);
  });

  it('hybrid() filters on a hostile column, and on a value holding quotes and a semicolon', async () => {
    const all = await chunks();
    const byId = async (id: string) =>
      (await q(`SELECT key FROM superduper.hybrid($1, 'backups upgrades invoices walrus narwhal', 10, $2)`, [INDEX, JSON.stringify({ [DOC_ID]: id })])).map((r) =>
        chunkOf(all, r.key),
      );
    const ab = await byId("a'b");
    expect(ab.length).toBe(all.filter((c) => c.id === "a'b").length);
    expect(ab.every((c) => c.id === "a'b")).toBe(true);
    const cd = await byId('c"d; --');
    expect(cd.length).toBeGreaterThan(0);
    expect(cd.every((c) => c.id === 'c"d; --')).toBe(true);
    expect(await byId("nobody'; DROP TABLE x; --")).toEqual([]);
    // Two columns of the composite key at once.
    const one = await q(`SELECT key FROM superduper.hybrid($1, 'pelican gateway', 10, $2)`, [INDEX, JSON.stringify({ [DOC_ID]: "a'b", [PART]: 2 })]);
    expect(one.length).toBeGreaterThan(0);
    expect(one.every((r) => r.key[0] === "a'b" && r.key[1] === '2')).toBe(true);
  });

  it('rag() answers with a function-model LLM named like the rest, citing the passage it quotes', async () => {
    const all = await chunks();
    const [row] = await q(`SELECT answer, sources, cached FROM superduper.rag($1, 'Which archive keeps backups for ninety days?', $2, 3)`, [INDEX, LLM]);
    expect(row.cached).toBe(false);
    expect(row.sources).toHaveLength(3);
    const cited = row.sources.filter((s: { cited: boolean }) => s.cited);
    expect(cited).toHaveLength(1);
    const passage = chunkOf(all, cited[0].key);
    expect(passage.output).toMatch(/walrus archive/);
    expect(row.answer).toBe(`${passage.output} [${cited[0].n}]`);
    for (const source of row.sources) chunkOf(all, source.key);
    // With a filter on the hostile column: only that document's passages.
    const [filtered] = await q(`SELECT sources FROM superduper.rag($1, 'How are replicas upgraded?', $2, 3, NULL, $3)`, [INDEX, LLM, JSON.stringify({ [DOC_ID]: 'c"d; --' })]);
    expect(filtered.sources.length).toBeGreaterThan(0);
    expect(filtered.sources.every((s: { key: string[] }) => s.key[0] === 'c"d; --')).toBe(true);
    const [again] = await q(`SELECT cached FROM superduper.rag($1, 'Which archive keeps backups for ninety days?', $2, 3)`, [INDEX, LLM]);
    expect(again.cached).toBe(true);
    // The same through an LLM over OpenAI's wire format: the same answer, the prompt rag_context() gives.
    const [api] = await q(`SELECT answer, sources FROM superduper.rag($1, 'Which archive keeps backups for ninety days?', $2, 3)`, [INDEX, CHAT]);
    expect(api).toEqual({ answer: row.answer, sources: row.sources });
    const [context] = await q(`SELECT prompt FROM superduper.rag_context($1, 'Which archive keeps backups for ninety days?', 3)`, [INDEX]);
    expect(server.requests.at(-1)!.body.messages.at(-1).content).toBe(context.prompt);
  });

  it('follows edits, key changes, filtered-out rows and deletes down the chain to search', async () => {
    await q(`UPDATE ${source} SET ${quoteIdent(BODY)} = 'Only one short line now about the walrus.' WHERE ${quoteIdent(DOC_ID)} = $1 AND ${quoteIdent(PART)} = 1`, ["a'b"]);
    // The quoted key moves to another one, holding a quote too.
    await q(`UPDATE ${source} SET ${quoteIdent(DOC_ID)} = $2 WHERE ${quoteIdent(DOC_ID)} = $1`, ['c"d; --', "e'f\"g"]);
    await q(`UPDATE ${source} SET "UPPER" = 'skip; me' WHERE ${quoteIdent(DOC_ID)} = 'plain'`);
    await q(`INSERT INTO ${source} VALUES ($1, 3, $2, 'x')`, ["a'b", 'A new document about the quokka registry.\n\nIt has two paragraphs of text.']);
    await db.waitFor(VECTORS, { timeoutMs: 30_000 });

    const all = await chunks();
    // The filter leaves "plain" out of the chunks.
    expect(all).toEqual((await expectedChunks()).filter((c) => c.id !== 'plain'));
    expect(all.filter((c) => c.id === "a'b" && c.part === 1).map((c) => c.output)).toEqual(['Only one short line now about the walrus.']);
    expect(await q(`SELECT count(*)::int AS n FROM ${vectorsTable}`)).toEqual([{ n: all.length }]);
    const orphans = await q(
      `SELECT count(*)::int AS n FROM ${vectorsTable} v WHERE NOT EXISTS (SELECT 1 FROM ${chunksTable} c
         WHERE c.${quoteIdent(DOC_ID)} = v.${quoteIdent(DOC_ID)} AND c.${quoteIdent(PART)} = v.${quoteIdent(PART)} AND c._position = v._position)`,
    );
    expect(orphans).toEqual([{ n: 0 }]);

    // Search sees only what is there now.
    const words = 'walrus archive narwhal replica ocelot ledger quokka registry backups';
    const hybrid = await q(`SELECT key FROM superduper.hybrid($1, $2, 50)`, [INDEX, words]);
    expect(hybrid.length).toBe(all.length);
    for (const hit of hybrid) chunkOf(all, hit.key);
    const vector = await q(`SELECT key FROM superduper.like($1, $2, 50)`, [INDEX, words]);
    expect(vector.length).toBe(all.length);
    for (const hit of vector) chunkOf(all, hit.key);
    const moved = await q(`SELECT key FROM superduper.hybrid($1, 'narwhal replica', 3, $2)`, [INDEX, JSON.stringify({ [DOC_ID]: "e'f\"g" })]);
    expect(moved.length).toBeGreaterThan(0);
    expect(chunkOf(all, moved[0].key).output).toMatch(/narwhal/);
    const [answer] = await q(`SELECT answer, sources FROM superduper.rag($1, 'What does the quokka registry hold?', $2, 2)`, [INDEX, LLM]);
    expect(answer.answer).toMatch(/quokka registry/);
    for (const source of answer.sources) chunkOf(all, source.key);

    // Removing everything leaves no chunk, no vector, no hit.
    await q(`DELETE FROM ${source}`);
    await db.waitFor(VECTORS, { timeoutMs: 30_000 });
    expect(await chunks()).toEqual([]);
    expect(await q(`SELECT count(*)::int AS n FROM ${vectorsTable}`)).toEqual([{ n: 0 }]);
    expect(await q(`SELECT key FROM superduper.hybrid($1, $2, 10)`, [INDEX, words])).toEqual([]);
  });
});
