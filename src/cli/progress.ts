import cliProgress from 'cli-progress';
import type { ListenerStatus } from '../backends/types.js';
import type { Superduper } from '../client.js';

/** Between two plain progress lines (output not a terminal: a log, CI), at least this long. */
const PLAIN_EVERY_MS = 5000;

/** How a listener's backfill (and queue) ended, for the summary and the exit status. */
export interface ProgressOutcome {
  listener: string;
  /** Rows with an output, of the rows it had to compute. */
  done: number;
  total: number;
  failed: number;
  /** The first few errors, "row <key>: <error>". */
  errors: string[];
}

/** One listener's numbers as the display shows them, from superduper.status. */
interface Reading {
  label: string;
  /** Rows with an output, plus rows of claimed ranges already computed (written when the range is). */
  value: number;
  total: number;
  failed: number;
  inFlight: number;
}

function read(status: ListenerStatus): Reading {
  const done = status.done ?? 0;
  const total = Math.max(status.backfill_total, done + status.pending + status.in_flight, 1);
  return {
    label: status.state === 'building' ? `${status.listener} (v${status.version}, rebuilding)` : status.listener,
    value: Math.min(total, done + status.computing),
    total,
    failed: status.failed,
    inFlight: status.in_flight,
  };
}

/** Rows a second since the first reading, and the seconds left at that pace ("" while unknown). */
class Pace {
  readonly #since = Date.now();
  #first: number | undefined;

  rate(value: number): number {
    this.#first ??= value;
    const seconds = (Date.now() - this.#since) / 1000;
    return seconds > 0 ? (value - this.#first) / seconds : 0;
  }

  eta(value: number, total: number): string {
    const rate = this.rate(value);
    if (value >= total) return 'done';
    // Half a second of readings is too few to say.
    if (rate <= 0 || Date.now() - this.#since < 500) return 'ETA unknown';
    const seconds = Math.ceil((total - value) / rate);
    return seconds < 120 ? `ETA ${seconds} s` : `ETA ${Math.ceil(seconds / 60)} min`;
  }
}

/**
 * Shows each listener's progress while its backfill (and queue) drains: rows
 * done of the rows to compute (counting those a sidecar has computed in a range
 * not yet written, so that the count moves with a slow model), rows in flight,
 * failed, the rate and the time left. On a terminal, a bar per listener; in a
 * log (not a terminal), a plain line per listener at most every 5 s when it
 * changed. Returns, once every listener is idle, how each ended; the caller
 * prints the summary (summaryLines) and fails when rows failed.
 */
export async function showProgress(db: Superduper, listeners: string[], options: { timeoutMs?: number } = {}): Promise<ProgressOutcome[]> {
  const terminal = process.stderr.isTTY === true;
  const bars = terminal
    ? new cliProgress.MultiBar(
        {
          format: ' {listener} |{bar}| {value}/{total} rows | {inFlight} in flight | {failed} failed | {rate} rows/s | {eta}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const byListener = new Map<string, { bar?: cliProgress.SingleBar; pace: Pace; line?: string; printedAt: number }>();
  const last = new Map<string, ListenerStatus>();
  const show = (status: ListenerStatus, final: boolean) => {
    const reading = read(status);
    let entry = byListener.get(reading.label);
    if (!entry) {
      entry = { pace: new Pace(), printedAt: 0 };
      byListener.set(reading.label, entry);
    }
    const rate = Math.round(entry.pace.rate(reading.value));
    const eta = entry.pace.eta(reading.value, reading.total);
    if (bars) {
      const payload = { listener: reading.label, inFlight: reading.inFlight, failed: reading.failed, rate, eta };
      entry.bar ??= bars.create(reading.total, reading.value, payload);
      entry.bar.setTotal(reading.total);
      entry.bar.update(reading.value, payload);
      return;
    }
    const line = `${reading.label}: ${reading.value}/${reading.total} rows, ${reading.inFlight} in flight, ${reading.failed} failed, ${rate} rows/s, ${eta}`;
    if (line !== entry.line && (final || Date.now() - entry.printedAt >= PLAIN_EVERY_MS)) {
      process.stderr.write(`${line}\n`);
      entry.line = line;
      entry.printedAt = Date.now();
    }
  };
  try {
    await db.waitUntilIdle({
      listeners,
      timeoutMs: options.timeoutMs ?? 24 * 3600 * 1000,
      pollMs: 250,
      countDone: true,
      onProgress: (status) => {
        for (const s of status) {
          last.set(s.listener, s);
          show(s, false);
        }
      },
    });
  } finally {
    const final = await db.status({ countDone: true }).catch(() => [...last.values()]);
    for (const s of final) if (listeners.includes(s.listener)) {
      last.set(s.listener, s);
      show(s, true);
    }
    bars?.stop();
  }
  const outcomes: ProgressOutcome[] = [];
  for (const listener of listeners) {
    const status = last.get(listener);
    if (!status) continue;
    const errors = status.failed > 0 ? (await db.failures(listener)).slice(0, 3).map((f) => `row ${f.primary_key.join(', ')}: ${firstLine(f.error)}`) : [];
    outcomes.push({ listener, done: status.done ?? 0, total: Math.max(status.backfill_total, (status.done ?? 0) + status.failed), failed: status.failed, errors });
  }
  return outcomes;
}

/** What the work came to, a line or more per listener, and what to run to see the failed rows. */
export function summaryLines(outcomes: readonly ProgressOutcome[], seconds: number): string[] {
  const lines: string[] = [];
  for (const outcome of outcomes) {
    const computed = `${outcome.listener}: ${outcome.done} of ${outcome.total} row(s) have outputs`;
    if (outcome.failed === 0) {
      lines.push(`${computed} (${seconds.toFixed(1)} s)`);
      continue;
    }
    lines.push(`${computed}; ${outcome.failed} failed. First errors:`);
    for (const error of outcome.errors) lines.push(`  ${error}`);
    lines.push(`  all of them: npx superduper failures ${quoteArg(outcome.listener)}`);
  }
  return lines;
}

const firstLine = (text: string) => {
  const line = text.split('\n')[0]!;
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
};

/** A listener name as the shell takes it. */
const quoteArg = (name: string) => (/^[A-Za-z0-9_.-]+$/.test(name) ? name : `'${name.replace(/'/g, `'\\''`)}'`);
