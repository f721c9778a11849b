// GET /api/admin/usage?range=24h|7d|30d: the dashboard's series (from the usage recorder) joined
// with failed key attempts per bucket (from the key service), plus a daily series for the
// "messages per day" chart. Answers are kept for a couple of seconds and concurrent requests for
// the same range share one computation, so a wall of dashboards costs Redis one query.
import express, { type Router } from 'express';
import type { KeyService } from '../core/keys/key-service.js';
import type { UsageBucket, UsageCounts, UsageRange, UsageRecorder } from '../core/usage/usage-recorder.js';
import { handle, HttpError } from './http-errors.js';

/** What the dashboard needs from core/usage's UsageRecorder. */
export type UsageSource = Pick<UsageRecorder, 'series'>;

export interface UsageView {
  range: UsageRange;
  bucketSeconds: number;
  buckets: (Pick<UsageBucket, 'start' | 'messages' | 'tokensIn' | 'tokensOut' | 'errors' | 'activeUsers' | 'latencyP50' | 'latencyP95'> & { failedKeyAttempts: number })[];
  totals: Pick<UsageCounts, 'messages' | 'tokensIn' | 'tokensOut' | 'errors' | 'activeUsers' | 'latencyP50' | 'latencyP95'> & {
    failedKeyAttempts: number;
  };
  daily: { buckets: { start: string; messages: number; activeUsers: number }[] };
  generatedAt: string;
}

const RANGES: UsageRange[] = ['24h', '7d', '30d', '90d'];
const HOURS: Record<UsageRange, number> = { '24h': 24, '7d': 24 * 7, '30d': 24 * 30, '90d': 24 * 90 };

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export async function buildUsageView(usage: UsageSource, keys: KeyService | undefined, range: UsageRange): Promise<UsageView> {
  const dailyRange: UsageRange = range === '24h' ? '7d' : range;
  const [series, daily, failed] = await Promise.all([
    usage.series(range),
    dailyRange === range ? null : usage.series(dailyRange),
    keys ? keys.failedAttemptsHourly(HOURS[range]) : Promise.resolve({ startMs: 0, counts: [] as number[] }),
  ]);
  const starts = series.buckets.map((b) => new Date(b.start).getTime());
  const bucketMs = starts.length > 1 ? starts[1] - starts[0] : 3_600_000;
  // Spread hourly failed attempts into the series' buckets (hours or days).
  const failedPer = new Array<number>(starts.length).fill(0);
  let j = 0;
  failed.counts.forEach((count, i) => {
    const t = failed.startMs + i * 3_600_000;
    while (j + 1 < starts.length && starts[j + 1] <= t) j++;
    if (starts.length && t >= starts[0] && t < starts[starts.length - 1] + bucketMs) failedPer[j] += count;
  });
  // Only what the charts draw (per-bucket outcome and channel tables would double the payload).
  const buckets = series.buckets.map((b, i) => ({
    start: b.start, messages: b.messages, tokensIn: b.tokensIn, tokensOut: b.tokensOut, errors: b.errors,
    activeUsers: b.activeUsers, latencyP50: b.latencyP50, latencyP95: b.latencyP95, failedKeyAttempts: failedPer[i],
  }));
  const t = series.totals;
  const daySeries = (daily ?? series).buckets;
  return {
    range,
    bucketSeconds: Math.round(bucketMs / 1000),
    buckets,
    totals: {
      messages: t.messages,
      tokensIn: t.tokensIn,
      tokensOut: t.tokensOut,
      errors: t.errors,
      activeUsers: t.activeUsers,
      latencyP50: t.latencyP50,
      latencyP95: t.latencyP95,
      failedKeyAttempts: failedPer.reduce((a, b) => a + b, 0),
    },
    daily: {
      buckets:
        bucketMs >= 86_400_000 || daily
          ? daySeries.map((b) => ({ start: b.start, messages: num(b.messages), activeUsers: num(b.activeUsers) }))
          : [],
    },
    generatedAt: new Date().toISOString(),
  };
}

export function usageRoutes(deps: { usage?: UsageSource; keys?: KeyService; cacheMs: number }): Router {
  const router = express.Router();
  // The serialised answer is cached: under load, JSON.stringify per request would dominate.
  const cache = new Map<UsageRange, { at: number; value: Promise<string> }>();

  router.get(
    '/usage',
    handle(async (req, res) => {
      const range = String(req.query.range ?? '24h') as UsageRange;
      if (!RANGES.includes(range)) throw new HttpError(400, 'invalid_range', `range must be one of ${RANGES.join(', ')}`);
      if (!deps.usage) throw new HttpError(503, 'usage_unavailable', 'Usage statistics are not available in this process');
      const now = Date.now();
      let hit = cache.get(range);
      if (!hit || now - hit.at >= deps.cacheMs) {
        hit = { at: now, value: buildUsageView(deps.usage, deps.keys, range).then((v) => JSON.stringify(v)) };
        cache.set(range, hit);
        // A failure must not be served from the cache to later requests.
        hit.value.catch(() => cache.delete(range));
      }
      res.set('Cache-Control', 'no-store').type('application/json').send(await hit.value);
    }),
  );

  return router;
}
