import { callsFunction, leadingWords, statements } from './sql-text.js';
import { SQLSTATES } from '../../generated/constants.js';

/**
 * Model calls from SQL in the embedded database (see superduper._request in
 * sql/functions/080_model_requests.sql, sql/templates/request_local.sql): with no dblink, a call not yet answered
 * raises SQLSTATE SDM01 with the call, as JSON, in DETAIL.
 */
export const MODEL_CALL_SQLSTATE = SQLSTATES.model_call;

export interface ModelCall {
  model: string;
  kind: 'embed' | 'predict';
  input: unknown;
}

/** The call an error stands for, or undefined when it is another error. */
export function modelCallOf(error: unknown): ModelCall | undefined {
  const { code, detail } = (error ?? {}) as { code?: string; detail?: string };
  return code === MODEL_CALL_SQLSTATE && detail ? parseModelCall(detail) : undefined;
}

export function parseModelCall(detail: string): ModelCall | undefined {
  try {
    const call = JSON.parse(detail) as ModelCall;
    return typeof call.model === 'string' && (call.kind === 'embed' || call.kind === 'predict') ? call : undefined;
  } catch {
    return undefined;
  }
}

// Every public function that may call a model: the search functions embed a text query.
const MODEL_FUNCTIONS: ReadonlySet<string> = new Set(['like', 'embed', 'predict', 'hybrid', 'rerank', 'rerank_scores', 'rag', 'rag_context']);

/** Whether some SQL may call a model (directly; a view or function hiding a call is not seen). */
export function mayCallModel(sql: string): boolean {
  return statements(sql).some((statement) => callsFunction(statement, MODEL_FUNCTIONS));
}

const TRANSACTION_CONTROL: ReadonlySet<string> = new Set(['commit', 'end', 'rollback', 'abort', 'savepoint', 'release']);

/**
 * Whether SQL that failed outside a transaction block can simply be run again:
 * it left nothing behind unless it ended a transaction of its own partway (a
 * script with COMMIT in it), which a second run would repeat. A DO block may
 * COMMIT inside its body; a procedure's body is not seen, so CALL is not re-run.
 */
export function rerunnable(sql: string): boolean {
  return statements(sql).every((statement) => {
    const [first, second] = leadingWords(statement, 2);
    if (first === undefined) return true;
    if (TRANSACTION_CONTROL.has(first) || (first === 'prepare' && second === 'transaction') || first === 'call') return false;
    if (first === 'do') return !statement.tokens.some((t) => t.kind === 'string' && /\b(commit|rollback)\b/i.test(t.text));
    return true;
  });
}
