import { CronExpressionParser } from 'cron-parser';

/** A schedule as superduper._schedules_due() gives it to a sidecar. */
export interface ScheduleRow {
  name: string;
  cron: string;
  timezone: string;
  missed: 'skip' | 'catch_up_once';
  grace_seconds: number;
  next_at: Date | null;
  /** The database's clock: every sidecar decides by the same one. */
  now: Date;
}

/** What a sidecar does about a schedule now. */
export type Decision =
  | { kind: 'wait' }
  /** Record the next due time (none yet, or the expression changed), or why there is none. */
  | { kind: 'next'; next: Date | null; error: string | null }
  /** Claim the firing due at `due` (and move the schedule on to `next`); `skip`: record it skipped. */
  | { kind: 'fire'; due: Date; next: Date; skip: boolean; note: Record<string, unknown> | null };

/** The most due times looked through at once (an every-second schedule missed for three hours). */
const MOST_DUE_TIMES = 10_800;

/** Checks a cron expression as the sidecars read it; throws cron-parser's message. */
export function parseCron(cron: string, timezone: string, after: Date) {
  return CronExpressionParser.parse(cron, { currentDate: after, tz: timezone });
}

/**
 * The decision for one schedule. A firing claimed within grace of its due
 * time is on time, and each due time fires in turn. One claimed later was
 * missed (no sidecar ran, or all were busy): every due time up to now is
 * missed with it, and the policy says what happens: "skip" records the
 * latest as skipped and runs nothing, "catch_up_once" runs once, for the
 * latest. Either way the schedule moves on to its first due time after now.
 */
export function decide(row: ScheduleRow): Decision {
  let next: Date;
  try {
    if (row.next_at === null) return { kind: 'next', next: parseCron(row.cron, row.timezone, row.now).next().toDate(), error: null };
    if (row.next_at > row.now) return { kind: 'wait' };
    next = parseCron(row.cron, row.timezone, row.next_at).next().toDate();
  } catch (error) {
    return { kind: 'next', next: null, error: `the cron expression "${row.cron}" (time zone ${row.timezone}) does not parse: ${(error as Error).message}` };
  }
  const lateMs = row.now.getTime() - row.next_at.getTime();
  if (lateMs <= row.grace_seconds * 1000) return { kind: 'fire', due: row.next_at, next, skip: false, note: null };
  // Missed: every due time from next_at up to now.
  const times = parseCron(row.cron, row.timezone, row.next_at);
  let latest = row.next_at;
  let missed = 1;
  for (;;) {
    const due = times.next().toDate();
    if (due > row.now) {
      next = due;
      break;
    }
    latest = due;
    if (++missed >= MOST_DUE_TIMES) {
      next = parseCron(row.cron, row.timezone, row.now).next().toDate();
      break;
    }
  }
  const note = { missed, first_missed: row.next_at.toISOString(), policy: row.missed };
  return { kind: 'fire', due: latest, next, skip: row.missed === 'skip', note };
}
