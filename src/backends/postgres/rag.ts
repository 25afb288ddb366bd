import { SuperduperError } from '../../errors.js';
import type { RagStore } from '../backend.js';
import type { RagSource } from '../types.js';
import { modelRecord } from './registry.js';
import type { Queryable } from './sql-driver.js';

/**
 * db.rag()'s statements: the checks, the prompt and the cache are
 * superduper.rag()'s own functions (078_rag.sql), so an answer streamed from
 * TypeScript and one asked from SQL are the same answer, cached once.
 */
export function postgresRag(db: Queryable): RagStore {
  return {
    async llm(model) {
      await db.query('SELECT superduper._rag_llm($1)', [model]);
      const record = await modelRecord(db, model);
      if (!record) throw new SuperduperError(`unknown model "${model}"`);
      return record;
    },

    async context(index, question, llm, options) {
      // Named arguments, and only those given: the SQL's defaults stay the
      // defaults, and a parameter added to rag_context() later breaks nothing.
      const params: unknown[] = [llm, index, question];
      const args = ['p_index => $2', 'p_question => $3'];
      const named: Array<[string, unknown, string]> = [
        ['p_k', options.k, 'integer'],
        ['p_prompt', options.prompt, 'text'],
        ['p_filter', options.filter === undefined ? undefined : JSON.stringify(options.filter), 'jsonb'],
        ['p_context_tokens', options.contextTokens, 'integer'],
        ['p_rerank', options.rerank, 'text'],
      ];
      for (const [name, value, type] of named) {
        if (value === undefined) continue;
        params.push(value);
        args.push(`${name} => $${params.length}::${type}`);
      }
      const result = await db.query<{ prompt: string; sources: RagSource[]; cached: string | null }>(
        `SELECT c.prompt, c.sources, superduper._rag_cached($1, c.prompt) AS cached FROM superduper.rag_context(${args.join(', ')}) AS c`,
        params,
      );
      return result.rows[0]!;
    },

    async store(llm, prompt, answer, version) {
      await db.query('SELECT superduper._rag_store($1, $2, $3, $4)', [llm, prompt, answer, version]);
    },
  };
}

