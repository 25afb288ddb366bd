import { SuperduperError } from '../errors.js';
import { parseCron } from '../schedules/due.js';
import type { Component } from './component.js';

export interface ScheduleTiming {
  name: string;
  /** Five fields (minute hour day month weekday), or six with seconds first: "0 3 * * *". */
  cron: string;
  /** The time zone the expression is read in (a name from pg_timezone_names; default UTC). */
  timezone?: string;
  /** A firing not claimed within grace of its due time: "skip" it (default) or run once for all missed ("catch_up_once"). */
  missed?: 'skip' | 'catch_up_once';
  /** How late a firing may be claimed and still be on time (default 60 s). */
  graceSeconds?: number;
}

/** What a firing does: compute every output of a listener again, or queue a run of a trainer. */
export type ScheduleOptions = ScheduleTiming & ({ refresh: string; train?: never } | { train: string; refresh?: never });

/**
 * A schedule (sql/functions/046_schedules.sql): fires its action at each due
 * time of its cron expression, once however many sidecars run. The expression
 * is checked here, with the parser the sidecars use, so a typo fails at once.
 */
export function schedule(options: ScheduleOptions): Component {
  try {
    parseCron(options.cron, options.timezone ?? 'UTC', new Date());
  } catch (error) {
    throw new SuperduperError(`superduper: schedule "${options.name}": the cron expression "${options.cron}" does not parse: ${(error as Error).message}`, {
      hint: 'Five fields (minute hour day month weekday), or six with seconds first: "0 3 * * *" is 03:00 every day.',
    });
  }
  return {
    kind: 'schedule',
    name: options.name,
    spec: {
      type: 'schedule',
      name: options.name,
      cron: options.cron,
      ...(options.timezone ? { timezone: options.timezone } : {}),
      ...(options.missed ? { missed: options.missed } : {}),
      ...(options.graceSeconds !== undefined ? { grace_seconds: options.graceSeconds } : {}),
      action: options.train !== undefined ? { train: options.train } : { refresh: options.refresh },
    },
  };
}
