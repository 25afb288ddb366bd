/**
 * Model calls from SQL in the embedded database (see superduper._request in
 * sql/functions/080_model_calls.sql): with no dblink, a call not yet answered
 * raises SQLSTATE SDM01 with the call, as JSON, in DETAIL.
 */
export const MODEL_CALL_SQLSTATE = 'SDM01';

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

/** Statements that may call a model (directly; a view hiding a call is not seen). */
export const MODEL_CALL_TEXT = /\b(like|embed|predict)\s*\(/i;

/**
 * Whether a statement that failed outside a transaction block can simply be run
 * again: it left nothing behind unless it ended a transaction of its own partway
 * (a script with COMMIT in it), which a second run would repeat.
 */
export function rerunnable(text: string): boolean {
  return !/\b(commit|end|rollback|abort|prepare\s+transaction|savepoint|release)\b/i.test(text);
}
