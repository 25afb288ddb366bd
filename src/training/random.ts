/**
 * The trainer's seeded randomness, the same on every platform: the split's
 * shuffle (fit.ts), the order of the mini-batches and the seeds of the
 * networks' initializers (network.ts).
 */

/** The row indices 0..n-1 in an order fixed by the seed (Fisher-Yates with mulberry32). */
export function shuffledRows(rows: number, seed: number): Uint32Array {
  const order = new Uint32Array(rows).map((_, i) => i);
  const random = mulberry32(seed);
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** A small seeded generator of numbers in [0, 1) (Tommy Ettinger's mulberry32): enough to shuffle rows, and the same on every platform. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
