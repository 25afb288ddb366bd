import type { TrainingControl } from '../backend.js';
import type { DeployResult, TrainingRunRow } from '../types.js';
import type { SqlDriver } from './sql-driver.js';

/** superduper.train, deploy, rollback and the training_runs view (sql/functions/047_trainers.sql). */
export function postgresTraining(db: SqlDriver): TrainingControl {
  return {
    async train(trainer) {
      const result = await db.query<{ run: number }>('SELECT superduper.train($1) AS run', [trainer]);
      return result.rows[0]!.run;
    },

    async deploy(trainer, options) {
      const result = await db.query<{ result: DeployResult }>('SELECT superduper.deploy($1, $2, $3, $4) AS result', [
        trainer,
        options.strategy ?? null,
        options.run ?? null,
        options.metric ?? null,
      ]);
      return result.rows[0]!.result;
    },

    async rollback(trainer) {
      const result = await db.query<{ result: DeployResult }>('SELECT superduper.rollback($1) AS result', [trainer]);
      return result.rows[0]!.result;
    },

    async runs(trainer) {
      const result = await db.query<TrainingRunRow>(
        `SELECT trainer, model, run, state, reason, deployed, model_version, metrics, rows::float8 AS rows,
                trained_rows::float8 AS trained_rows, held_out_rows::float8 AS held_out_rows, snapshot, fit_seconds, seconds,
                decision, error, attempts, queued_at, started_at, finished_at
         FROM superduper.training_runs WHERE $1::text IS NULL OR trainer = $1 ORDER BY trainer, run`,
        [trainer ?? null],
      );
      return result.rows.map((row) => ({ ...row, deployed: row.deployed === true }));
    },
  };
}
