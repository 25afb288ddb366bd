import { SQLSTATES } from '../../generated/constants.js';

/**
 * superduper.wait_for() on the embedded database (see sql/functions/065_wait_for.sql):
 * the one session is what the sidecar needs to compute, so the function cannot
 * sleep in it. While changes are pending it raises SQLSTATE SDW01 with, in
 * DETAIL, the moment it waits from and its deadline; the host lets the sidecar
 * work for a moment and runs the statement again, first setting
 * superduper.wait to that DETAIL so that the wait goes on from the same moment
 * to the same deadline.
 */
export const WAIT_SQLSTATE = SQLSTATES.wait_rerun;

/** How long the host lets the sidecar work before running the statement again. */
export const WAIT_RERUN_MS = 20;

/** The DETAIL of an SDW01 error, or undefined for any other error. */
export function waitResumeOf(error: unknown): string | undefined {
  const { code, detail } = (error ?? {}) as { code?: string; detail?: string };
  return code === WAIT_SQLSTATE && detail ? detail : undefined;
}

/** The statement that hands the next run of wait_for its moment and deadline (or, with '', clears them). */
export function resumeWaitSql(detail: string): string {
  return `SELECT pg_catalog.set_config('superduper.wait', '${detail.replace(/'/g, "''")}', false)`;
}
