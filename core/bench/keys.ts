// `npm run bench:keys`: verifications per second and latency percentiles of KeyService.verify()
// against the local Redis, with simulated users sending a mix of right and wrong keys and many
// verifications in flight at once. Uses its own random key prefix and deletes it afterwards.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { coreSchema, DEFAULT_REDIS_URL } from '../config.js';
import { parseEnv } from '../env.js';
import { KeyService } from '../keys/key-service.js';
import { Store } from '../redis.js';
import { deleteByPrefix } from '../testing.js';

const HELP = `Usage: npm run bench:keys [-- options]

Measures KeyService.verify() throughput and latency against Redis (REDIS_URL, default
${DEFAULT_REDIS_URL}) under a random prefix that is deleted afterwards.

Options:
  --users N          simulated users (default 1000)
  --concurrency N    verifications in flight at once (default 32)
  --seconds N        measuring time after a 1 s warm-up (default 5)
  --wrong RATIO      share of wrong keys, 0..1 (default 0.2)
  --no-autopipeline  do not enable ioredis auto-pipelining on the bench connection
  --json             print one JSON object instead of text
  -h, --help         this help`;

interface Result {
  users: number;
  concurrency: number;
  seconds: number;
  wrongRatio: number;
  autoPipelining: boolean;
  verifications: number;
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** CPU time per verification (load-independent): this process, and the Redis server. */
  cpuMicrosPerVerification: { node: number; redis: number | null };
  outcomes: Record<string, number>;
  cpus: number;
  node: string;
}

function pct(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(3));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '32' },
      seconds: { type: 'string', default: '5' },
      wrong: { type: 'string', default: '0.2' },
      'no-autopipeline': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const users = positiveInt(values.users, '--users');
  const concurrency = positiveInt(values.concurrency, '--concurrency');
  const seconds = positiveInt(values.seconds, '--seconds');
  const wrongRatio = Number(values.wrong);
  if (!(wrongRatio >= 0 && wrongRatio <= 1)) throw new Error('--wrong expects a number from 0 to 1');
  const autoPipelining = !values['no-autopipeline'];

  const url = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const store = new Store({ url, prefix: `bench:keys:${randomBytes(4).toString('hex')}:` });
  await store.open();
  // Realistic key settings, but no lockouts or breaker: every verification takes the full path
  // (digest compare, Lua bookkeeping) instead of the cheaper "locked" answer.
  const config = { ...parseEnv(coreSchema, {}), KEY_MAX_ATTEMPTS: 1000, KEY_GLOBAL_FAIL_LIMIT: 0 };
  const keys = new KeyService(store, config, undefined, { autoPipelining });
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    const latencies = new Float64Array(50_000_000 / 8);
    let n = 0;
    const outcomes: Record<string, number> = {};
    let measuring = false;
    let stop = false;

    const worker = async () => {
      while (!stop) {
        const user = `user-${Math.floor(Math.random() * users)}`;
        const attempt = Math.random() < wrongRatio ? wrong : key;
        const t0 = performance.now();
        const r = await keys.verify(user, attempt);
        const dt = performance.now() - t0;
        if (measuring && n < latencies.length) {
          latencies[n++] = dt;
          const o = r.ok ? 'ok' : r.reason;
          outcomes[o] = (outcomes[o] ?? 0) + 1;
        }
      }
    };
    const workers = Array.from({ length: concurrency }, worker);
    await sleep(1000); // warm-up: script load, JIT, connection
    const bar = values.json || !process.stderr.isTTY ? null : new cliProgress.SingleBar({ format: 'measuring [{bar}] {value}/{total} s', stream: process.stderr }, cliProgress.Presets.shades_classic);
    bar?.start(seconds, 0);
    const redisCpu0 = await redisCpuSeconds(store);
    const cpu0 = process.cpuUsage();
    measuring = true;
    const t0 = performance.now();
    for (let s = 1; s <= seconds; s++) {
      await sleep(1000);
      bar?.update(s);
    }
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const redisCpu1 = await redisCpuSeconds(store);
    stop = true;
    await Promise.all(workers);
    bar?.stop();

    const sorted = latencies.slice(0, n).sort();
    const result: Result = {
      users,
      concurrency,
      seconds: Number(elapsed.toFixed(2)),
      wrongRatio,
      autoPipelining,
      verifications: n,
      perSecond: Math.round(n / elapsed),
      latencyMs: { p50: pct(sorted, 0.5), p90: pct(sorted, 0.9), p99: pct(sorted, 0.99), max: pct(sorted, 1) },
      cpuMicrosPerVerification: {
        node: Number(((cpu.user + cpu.system) / Math.max(1, n)).toFixed(1)),
        redis: redisCpu0 !== null && redisCpu1 !== null ? Number((((redisCpu1 - redisCpu0) * 1e6) / Math.max(1, n)).toFixed(1)) : null,
      },
      outcomes,
      cpus: (await import('node:os')).cpus().length,
      node: process.version,
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(`verify(): ${result.perSecond.toLocaleString('en-US')} verifications/s over ${result.seconds} s`);
      console.log(`latency ms: p50 ${result.latencyMs.p50}  p90 ${result.latencyMs.p90}  p99 ${result.latencyMs.p99}  max ${result.latencyMs.max}`);
      const c = result.cpuMicrosPerVerification;
      console.log(`CPU per verification: node ${c.node} µs, redis-server ${c.redis ?? '?'} µs (includes other Redis clients)`);
      console.log(`${users} users, ${concurrency} in flight, ${Math.round(wrongRatio * 100)}% wrong keys, auto-pipelining ${autoPipelining ? 'on' : 'off'}; outcomes ${JSON.stringify(outcomes)}`);
      console.log(`machine: ${result.cpus} CPUs, node ${result.node}`);
    }
  } finally {
    await deleteByPrefix(store).catch(() => undefined);
    await store.close();
  }
}

/** The Redis server's CPU seconds so far (INFO cpu), or null when INFO is not allowed. */
async function redisCpuSeconds(store: Store): Promise<number | null> {
  try {
    const info = await store.redis.info('cpu');
    const get = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
    const v = get('used_cpu_user') + get('used_cpu_sys');
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

function positiveInt(v: string | undefined, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} expects a positive integer, got "${v}"`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((err: unknown) => {
  console.error(`bench:keys failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
