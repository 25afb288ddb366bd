import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import pgvector from 'pgvector';
import { SuperduperError } from '../../errors.js';
import type { Search } from '../backend.js';
import type { SearchHit, SearchOptions } from '../types.js';
import type { Queryable } from './sql-driver.js';

/** superduper.like() from TypeScript: text (or any model input) or a vector. */
export function postgresSearch(db: Queryable): Search & { vectorType(): Promise<string> } {
  // pgvector's type, qualified with the schema it lives in (per database).
  let vectorType: Promise<string> | undefined;
  const typeName = (): Promise<string> => {
    if (!vectorType) {
      const asked = db.query<{ type: string }>('SELECT superduper._vector_type() AS type').then((r) => r.rows[0]!.type);
      // A failed look is not kept: the next call asks again.
      asked.catch(() => {
        if (vectorType === asked) vectorType = undefined;
      });
      vectorType = asked;
    }
    return vectorType;
  };
  return {
    vectorType: typeName,
    async like(index, query, options) {
      const k = options.k ?? 10;
      const filter = options.filter === undefined ? null : JSON.stringify(options.filter);
      const result =
        typeof query === 'string'
          ? await db.query<SearchHit>('SELECT id, key, score FROM superduper.like($1, $2::text, $3, $4::jsonb)', [index, query, k, filter])
          : await db.query<SearchHit>(`SELECT id, key, score FROM superduper.like($1, $2::text::${await typeName()}, $3, $4::jsonb)`, [
              index,
              pgvector.toSql(Array.from(query)),
              k,
              filter,
            ]);
      return result.rows;
    },
  };
}

interface IndexSource {
  source_schema: string;
  source_table: string;
  pk: string[];
  pk_types: string[];
}

/**
 * A table, for searches that compose with the rest of a Kysely query.
 *
 * @example
 * const nearest = await db.table('docs').like({ body: 'reset my password' }, { index: 'docs_index', k: 5 });
 * const rows = await nearest.where('lang', '=', 'en').select(['id', 'title']).execute();
 */
export class TableQuery {
  constructor(
    private readonly kysely: Kysely<any>,
    private readonly db: Queryable,
    private readonly vectorType: () => Promise<string>,
    readonly name: string,
    readonly schema?: string,
  ) {}

  /**
   * The table's rows nearest to the query, with a `score` column, nearest first:
   * a Kysely query to refine. `options.filter` filters before the top k is taken
   * (pre-filter: k rows whenever k rows match); a `.where(...)` added to the
   * result filters after (post-filter: the top k, then those that pass).
   */
  async like(
    query: Record<string, string | ArrayLike<number>>,
    options: SearchOptions & { index: string },
  ): Promise<SelectQueryBuilder<any, any, any>> {
    const entries = Object.entries(query);
    if (entries.length !== 1) {
      throw new SuperduperError(`table ${this.name}: like() takes one column and its query, e.g. { body: 'some text' }`);
    }
    const [column, value] = entries[0]!;
    const index = await this.#index(options.index, column);
    const k = options.k ?? 10;
    const filter = options.filter === undefined ? null : JSON.stringify(options.filter);
    const queryArg =
      typeof value === 'string'
        ? sql`${value}::text`
        : sql`${pgvector.toSql(Array.from(value))}::text::${sql.raw(await this.vectorType())}`;
    const hits = sql`superduper.like(${options.index}, ${queryArg}, ${k}, ${filter}::jsonb)`.as('l');
    // pk_types come from the catalog (format_type), not from the caller.
    const join = index.pk
      .map((column, i) => sql<boolean>`t.${sql.id(column)} = l.key[${sql.lit(i + 1)}]::${sql.raw(index.pk_types[i]!)}`)
      .reduce((a, b) => sql<boolean>`${a} AND ${b}`);
    return this.kysely
      .selectFrom(sql`${sql.id(index.source_schema, index.source_table)}`.as('t'))
      .innerJoin(hits, (on) => on.on(join))
      .selectAll('t')
      .select(sql<number>`l.score`.as('score'))
      .orderBy('score', 'desc');
  }

  async #index(index: string, column: string): Promise<IndexSource> {
    const result = await this.db.query<IndexSource & { keys: string[] }>(
      `SELECT l.source_schema, l.source_table, l.pk, l.pk_types, l.keys
       FROM superduper._vector_indexes v JOIN superduper._listeners l ON l.name = v.listener AND l.state = 'current'
       WHERE v.name = $1 AND v.state = 'current'`,
      [index],
    );
    const row = result.rows[0];
    if (!row) throw new SuperduperError(`unknown vector index "${index}"`);
    const matches = row.source_table === this.name && (this.schema === undefined || row.source_schema === this.schema);
    if (!matches) {
      throw new SuperduperError(`vector index "${index}" searches ${row.source_schema}.${row.source_table}, not ${this.schema ? `${this.schema}.` : ''}${this.name}`);
    }
    const columns = await this.db.query<{ name: string }>(
      `SELECT attname AS name FROM pg_catalog.pg_attribute
       WHERE attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND attnum > 0 AND NOT attisdropped`,
      [row.source_schema, row.source_table],
    );
    if (!columns.rows.some((c) => c.name === column)) {
      throw new SuperduperError(`table ${row.source_schema}.${row.source_table} has no column "${column}" to search by`);
    }
    return row;
  }
}
