/**
 * An error of a trainer's run that its owner can fix: a bad spec, rows the
 * fit cannot use, a memory limit too small. The message starts with the
 * trainer's name and says what to do, because it ends up, as is, in
 * superduper.training_runs.error for a person to read.
 */
export class TrainingError extends Error {
  /** The trainer the run belongs to. */
  readonly trainer: string;
  /** The message without the `trainer "<name>": ` prefix (kept so the worker can send it across and the parent rebuild the same error). */
  readonly detail: string;

  constructor(trainer: string, detail: string) {
    super(`trainer "${trainer}": ${detail}`);
    this.name = 'TrainingError';
    this.trainer = trainer;
    this.detail = detail;
  }
}
