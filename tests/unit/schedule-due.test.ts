/** What a sidecar decides about a schedule (src/schedules/due.ts), by the database's clock. */
import { describe, expect, it } from 'vitest';
import { decide, type ScheduleRow } from '../../src/schedules/due.js';

const row = (overrides: Partial<ScheduleRow>): ScheduleRow => ({
  name: 's',
  cron: '*/10 * * * * *',
  timezone: 'UTC',
  missed: 'skip',
  grace_seconds: 5,
  next_at: null,
  now: new Date('2026-01-01T00:00:03Z'),
  ...overrides,
});

describe('schedule decisions', () => {
  it('records the first due time after now for a new schedule, in its time zone', () => {
    expect(decide(row({}))).toEqual({ kind: 'next', next: new Date('2026-01-01T00:00:10Z'), error: null });
    // 03:00 in Paris is 02:00 UTC in winter.
    expect(decide(row({ cron: '0 3 * * *', timezone: 'Europe/Paris' }))).toEqual({ kind: 'next', next: new Date('2026-01-01T02:00:00Z'), error: null });
  });

  it('waits until the due time, then fires it and moves on to the next', () => {
    expect(decide(row({ next_at: new Date('2026-01-01T00:00:10Z') }))).toEqual({ kind: 'wait' });
    expect(decide(row({ next_at: new Date('2026-01-01T00:00:00Z') }))).toEqual({
      kind: 'fire',
      due: new Date('2026-01-01T00:00:00Z'),
      next: new Date('2026-01-01T00:00:10Z'),
      skip: false,
      note: null,
    });
  });

  it('skips the firings missed past their grace, once, or runs once for all of them', () => {
    const late = { next_at: new Date('2026-01-01T00:00:00Z'), now: new Date('2026-01-01T00:00:35Z') };
    const note = { missed: 4, first_missed: '2026-01-01T00:00:00.000Z' };
    expect(decide(row({ ...late, missed: 'skip' }))).toEqual({
      kind: 'fire',
      due: new Date('2026-01-01T00:00:30Z'),
      next: new Date('2026-01-01T00:00:40Z'),
      skip: true,
      note: { ...note, policy: 'skip' },
    });
    expect(decide(row({ ...late, missed: 'catch_up_once' }))).toMatchObject({ due: new Date('2026-01-01T00:00:30Z'), skip: false, note: { ...note, policy: 'catch_up_once' } });
  });

  it('says why an expression does not parse', () => {
    expect(decide(row({ cron: '99 * * * *' }))).toEqual({ kind: 'next', next: null, error: expect.stringMatching(/^the cron expression "99 \* \* \* \*" \(time zone UTC\) does not parse: /) });
  });
});
