import { mayCallModel, type ModelCall, rerunnable } from './model-call-error.js';

/** How many model calls one statement may need answered before it is given up on. */
const MAX_CALLS_PER_STATEMENT = 1000;

/** One run of the statement: what it gave, the model call it raised (SDM01), whether it failed. */
export interface StatementRun<R> {
  outcome: R;
  call: ModelCall | undefined;
  failed: boolean;
  /** The run itself began a transaction block that is still open (aborted): pgJDBC's BEGIN sent with a statement. */
  leftBlockOpen: boolean;
}

/**
 * Runs a statement, answering the model calls it raises (SDM01: the embedded
 * database has no dblink, so SQL cannot wait for a model) and running it again,
 * until it runs through. Used by the driver (this process's queries) and by the
 * wire server (clients' statements), so that both follow one rule:
 * - outside a transaction block, a failed run left nothing behind, so the
 *   statement is run again if it can be (see rerunnable);
 * - inside one, a savepoint taken before each run is rolled back to. It is taken
 *   only for statements that mention a model call, the only ones that can need
 *   it, so that other errors abort the block as PostgreSQL's always do.
 * A call that `answer` could not answer (false) gets one more plain run, so that
 * the caller sees the statement's own error.
 */
export async function runAnsweringModelCalls<R>(options: {
  sql: string;
  inBlock: boolean;
  /** Whether anyone can answer, and the statement is whole (not part of an unfinished batch). */
  answerable: boolean;
  exec(sql: string): Promise<unknown>;
  run(again: boolean): Promise<StatementRun<R>>;
  answer(call: ModelCall): Promise<boolean>;
}): Promise<R> {
  let fromSavepoint = options.answerable && options.inBlock && mayCallModel(options.sql);
  let canRerun = options.answerable && !options.inBlock && rerunnable(options.sql);
  for (let calls = 0; ; calls++) {
    if (fromSavepoint) await options.exec('SAVEPOINT superduper_model_call');
    const run = await options.run(calls > 0);
    if (run.call && (fromSavepoint || canRerun) && calls < MAX_CALLS_PER_STATEMENT) {
      if (fromSavepoint) await options.exec('ROLLBACK TO SAVEPOINT superduper_model_call; RELEASE SAVEPOINT superduper_model_call');
      // A block the run itself began is now aborted: roll it back, so that the
      // statement runs again from where it started.
      else if (run.leftBlockOpen) await options.exec('ROLLBACK');
      if (!(await options.answer(run.call))) {
        fromSavepoint = false;
        canRerun = false;
      }
      continue;
    }
    if (fromSavepoint && !run.failed) await options.exec('RELEASE SAVEPOINT superduper_model_call');
    return run.outcome;
  }
}
