/**
 * Metrics cost (issue: an operator's view): streaming latency and the backfill
 * ratio with the sidecar's metrics on (as `superduper start --metrics`, scraped
 * every 5 s) against off, interleaved off, on, off, on, so that the machine's
 * drift hits both alike. "Within the spread": see withinSpread.
 *
 *   make bench ONLY=metrics
 */
import { backfillBenchmark } from './backfill.js';
import { streamingBenchmark } from './streaming.js';

export interface MetricsResult {
  streamingP50Ms: { off: number[]; on: number[] };
  streamingP99Ms: { off: number[]; on: number[] };
  backfillRatio: { off: number[]; on: number[] };
  withinSpread: { streamingP50: boolean; backfill: boolean };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * Whether metrics cost nothing the machine's own noise does not: the median
 * with them is no worse (higher) than the worst run without, plus the spread
 * of the runs without. (Lower is within it too: metrics cannot make it faster.)
 */
function withinSpread(off: number[], on: number[]): boolean {
  const high = Math.max(...off);
  return median(on) <= high + (high - Math.min(...off));
}

export async function metricsBenchmark(rounds = 3): Promise<MetricsResult> {
  const result: MetricsResult = {
    streamingP50Ms: { off: [], on: [] },
    streamingP99Ms: { off: [], on: [] },
    backfillRatio: { off: [], on: [] },
    withinSpread: { streamingP50: false, backfill: false },
  };
  for (let round = 0; round < rounds; round++) {
    for (const metrics of [false, true]) {
      const side = metrics ? 'on' : 'off';
      const streaming = await streamingBenchmark(100, 10, 1, metrics);
      result.streamingP50Ms[side].push(streaming.p50Ms);
      result.streamingP99Ms[side].push(streaming.p99Ms);
      const backfill = await backfillBenchmark(100_000, 3, metrics);
      result.backfillRatio[side].push(backfill.ratio);
    }
  }
  result.withinSpread = {
    streamingP50: withinSpread(result.streamingP50Ms.off, result.streamingP50Ms.on),
    backfill: withinSpread(result.backfillRatio.off, result.backfillRatio.on),
  };
  return result;
}
