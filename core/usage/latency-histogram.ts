// Fixed latency buckets: counting into a bucket is one HINCRBY, bucket counts add up across hours
// and days, and percentiles are estimated from the counts (exact enough for a dashboard).

/** Upper bounds in ms; the last bucket holds everything slower. */
export const LATENCY_BOUNDS_MS = [50, 100, 250, 500, 1000, 2000, 3000, 5000, 10_000, 20_000, 30_000, 60_000] as const;

/** Index of the bucket a latency falls in (LATENCY_BOUNDS_MS.length = the overflow bucket). */
export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= LATENCY_BOUNDS_MS[i]) return i;
  return LATENCY_BOUNDS_MS.length;
}

/**
 * The q-quantile (0..1) estimated by linear interpolation inside the bucket it falls in.
 * null when there are no samples; the overflow bucket reports its lower bound.
 */
export function quantile(counts: number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0 && seen + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      if (i >= LATENCY_BOUNDS_MS.length) return lower;
      const upper = LATENCY_BOUNDS_MS[i];
      return Math.round(lower + ((rank - seen) / c) * (upper - lower));
    }
    seen += c;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}
