// Realistic-looking usage for panel tests, screenshots and the HTTP benchmark: messages spread
// over the past days with a daily rhythm, a few errors, several users (one with a hostile name).
import type { UsageRecorder } from '../../core/usage/usage-recorder.js';

export const HOSTILE_NAME = '<img src=x onerror=alert(1)>';

const NAMES = ['小明', 'Alice 🌸', '王芳', 'Bob', '李雷', '韩梅梅', 'Zoë', '陈晨', HOSTILE_NAME, '张伟'];

/** A deterministic pseudo-random sequence (so seeded data looks the same every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export async function seedUsage(usage: UsageRecorder, opts: { days: number; perDay: number; now?: Date; seed?: number } = { days: 30, perDay: 40 }): Promise<number> {
  const now = (opts.now ?? new Date()).getTime();
  const rand = rng(opts.seed ?? 42);
  let n = 0;
  const writes: Promise<void>[] = [];
  // Oldest first, so each user's "last seen" ends up recent.
  for (let d = opts.days - 1; d >= 0; d--) {
    const count = Math.round(opts.perDay * (0.6 + 0.8 * rand()) * (1 + d / opts.days) ** -1);
    for (let i = 0; i < count; i++) {
      // More traffic in the evening (Shanghai): peak around 12:00-14:00 UTC.
      const hour = Math.floor((rand() + rand() + rand()) / 3 * 24);
      const at = now - d * 86_400_000 - ((now / 3_600_000) % 24 - hour + 24) % 24 * 3_600_000 - Math.floor(rand() * 3_600_000);
      if (at > now) continue;
      const u = Math.floor(rand() * NAMES.length);
      const error = rand() < 0.03;
      writes.push(
        usage.record({
          userId: `wx-user-${u}`,
          channel: u % 4 === 3 ? 'web' : 'wechat',
          tokensIn: 40 + Math.floor(rand() * 200),
          tokensOut: error ? 0 : 10 + Math.floor(rand() * 60),
          latencyMs: error ? 30_000 : 300 + Math.floor(rand() * rand() * 4000),
          outcome: error ? 'timeout' : 'ok',
          at: new Date(at),
        }),
      );
      n++;
      if (writes.length >= 200) await Promise.all(writes.splice(0));
    }
  }
  await Promise.all(writes);
  for (let u = 0; u < NAMES.length; u++) {
    await usage.touchUser({ userId: `wx-user-${u}`, displayName: NAMES[u], channel: u % 4 === 3 ? 'web' : 'wechat', at: new Date(now - u * 47 * 60_000) });
  }
  return n;
}
