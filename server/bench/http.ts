// `npm run bench:http`: the HTTP server under load on loopback (autocannon), against real Redis.
//  1. GET /api/admin/usage?range=30d with 90 days of recorded usage, 100 connections
//     (target p99 ≤ 50 ms), with the short usage cache on (default) and off (USAGE_CACHE_MS=0).
//  2. GET /healthz while the generation service decodes 8 chats at once (target p99 ≤ 20 ms).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { SingleBar, Presets } from 'cli-progress';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { createGenerator, DEFAULT_MODEL_DIR, type TextGenerator } from '../../model/index.js';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { createApp } from '../app.js';
import { serverSchema } from '../config.js';
import { createMetrics, instrumentGenerator } from '../metrics.js';

const HELP = `Usage: npm run bench:http [-- options]

  --duration S      seconds per autocannon run (default 10)
  --connections N   concurrent connections for the usage endpoint (default 100)
  --days N          days of usage to record first (default 90)
  --per-day N       messages per day to record (default 300)
  --model DIR       model for the /healthz-while-decoding run (default: model/shipped when it
                    exists, else a generated 4-layer 256-wide random model)
  --chats N         concurrent generations during the /healthz run (default 8)
  -h, --help        this help

Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/0); uses an isolated key prefix.`;

const PASSWORD = 'benchmark-password-1';

interface Figures {
  label: string;
  busyUsPerRequest: number;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
}

async function cannon(label: string, url: string, opts: { connections: number; duration: number; headers?: Record<string, string> }): Promise<Figures> {
    // The load generator runs in its own worker thread, so it does not share the server's event loop.
  // Event-loop utilisation of this (the server's) thread gives its CPU cost per request, a figure
  // that holds however busy the rest of the machine is.
  const elu0 = performance.eventLoopUtilization();
  const r = await autocannon({ url, connections: opts.connections, duration: opts.duration, headers: opts.headers, pipelining: 1, workers: 1 });
  const elu = performance.eventLoopUtilization(elu0);
  return {
    label,
    busyUsPerRequest: r.requests.total ? Math.round((elu.active * 1000) / r.requests.total) : 0,
    requests: r.requests.total,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

function print(f: Figures, target?: number): void {
  const verdict = target === undefined ? '' : f.p99 <= target ? `  ✔ p99 ≤ ${target} ms` : `  ✖ p99 > ${target} ms`;
  console.log(
    `${f.label.padEnd(46)} ${String(f.rps).padStart(6)} req/s  p50 ${f.p50} ms  p90 ${f.p90} ms  p99 ${f.p99} ms  max ${f.max} ms  (${f.requests} requests, ${f.errors} errors, ${f.non2xx} non-2xx; server thread busy ${f.busyUsPerRequest} µs/request)${verdict}`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '100' },
      days: { type: 'string', default: '90' },
      'per-day': { type: 'string', default: '300' },
      model: { type: 'string' },
      chats: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const days = Number(values.days);
  const perDay = Number(values['per-day']);
  const chats = Number(values.chats);
  console.log(`machine: ${cpus().length} vCPU (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);

  const store = await openTestStore('bench-http');
  const coreConfig = parseEnv(coreSchema, {});
  const keys = new KeyService(store, coreConfig);
  const usage = new UsageRecorder(store, coreConfig);
  let tmpModel: string | null = null;
  let generator: TextGenerator | null = null;
  const servers: Server[] = [];
  try {
    // 1. 90 days of usage, recorded through the real recorder.
    const bar = new SingleBar({ format: 'recording usage |{bar}| {value}/{total} days', hideCursor: true }, Presets.shades_classic);
    bar.start(days, 0);
    const now = Date.now();
    let messages = 0;
    for (let d = days - 1; d >= 0; d--) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < perDay; i++) {
        const at = new Date(now - d * 86_400_000 - Math.floor(((i * 7919) % 86_400) * 1000));
        batch.push(usage.record({ userId: `u${(i * 31 + d) % 500}`, channel: i % 5 ? 'wechat' : 'web', tokensIn: 100, tokensOut: 20 + (i % 40), latencyMs: 200 + ((i * 37) % 3000), outcome: i % 50 ? 'ok' : 'error', at }));
      }
      await Promise.all(batch);
      messages += perDay;
      bar.increment();
    }
    bar.stop();
    console.log(`recorded ${messages} messages over ${days} days`);

    const listen = async (env: Record<string, string>, gen?: TextGenerator): Promise<string> => {
      const metrics = createMetrics({ defaultMetrics: false });
      const app = createApp({
        store, startedAt: new Date(), config: parseEnv(serverSchema, { ADMIN_PASSWORD: PASSWORD, ...env }), coreConfig, metrics,
        generator: gen ? instrumentGenerator(gen, metrics) : undefined,
        admin: { keys, usage },
      });
      const server: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    const login = async (base: string): Promise<Record<string, string>> => {
      const res = await fetch(`${base}/api/admin/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }) });
      if (!res.ok) throw new Error(`login failed: ${res.status}`);
      return { Cookie: res.headers.getSetCookie()[0].split(';')[0] };
    };

    console.log(`\nGET /api/admin/usage?range=30d, ${connections} connections, ${duration} s each`);
    const cached = await listen({});
    const cachedFig = await cannon('usage 30d (USAGE_CACHE_MS=2000, default)', `${cached}/api/admin/usage?range=30d`, { connections, duration, headers: await login(cached) });
    print(cachedFig, 50);
    const fresh = await listen({ USAGE_CACHE_MS: '0' });
    print(await cannon('usage 30d (USAGE_CACHE_MS=0, every request hits Redis)', `${fresh}/api/admin/usage?range=30d`, { connections, duration, headers: await login(fresh) }));

    // 2. /healthz while the model decodes `chats` conversations at once.
    let modelDir = values.model ?? (existsSync(path.join(DEFAULT_MODEL_DIR, 'config.json')) ? DEFAULT_MODEL_DIR : null);
    let modelLabel = modelDir ? `model at ${modelDir}` : '';
    if (!modelDir) {
      tmpModel = await mkdtemp(path.join(tmpdir(), 'nemo-bench-http-'));
      await createTinyModel(tmpModel, { nLayer: 4, nEmbd: 256, nHead: 4, nPositions: 256, vocabSize: 400, seed: 3 });
      modelDir = tmpModel;
      modelLabel = 'generated random model (4 layers, 256 wide, ctx 256); model/shipped was not present';
    }
    generator = await createGenerator({ modelDir, maxBatch: chats, maxQueue: chats * 2 });
    const info = generator.info();
    console.log(`\nGET /healthz while decoding ${chats} chats: ${modelLabel} (${(info.parameters / 1e6).toFixed(1)} M parameters, backend ${info.backend})`);
    const base = await listen({}, generator);
    print(await cannon('healthz, model idle', `${base}/healthz`, { connections: 10, duration: Math.max(3, Math.round(duration / 2)) }));
    let decoding = true;
    let generated = 0;
    const g = generator;
    const t0 = performance.now();
    const loops = Array.from({ length: chats }, async (_, i) => {
      while (decoding) {
        const r = await g.generate({ prompt: `User: tell me story number ${i}\nBot:`, maxNewTokens: 64, temperature: 0.8, seed: i + generated });
        generated += r.completionTokens;
      }
    });
    await new Promise((r) => setTimeout(r, 1500)); // let every chat start decoding
    const busy = await cannon(`healthz, ${chats} chats decoding`, `${base}/healthz`, { connections: 10, duration });
    decoding = false;
    await Promise.all(loops);
    const tokPerS = (generated / ((performance.now() - t0) / 1000)).toFixed(1);
    print(busy, 20);
    console.log(`  (the model generated ${generated} tokens, ${tokPerS} tokens/s over all ${chats} chats, while the run lasted)`);
    const load = (await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ');
    console.log(`\nLoad average now: ${load} (on ${cpus().length} vCPU). The machine may be shared with other work; figures vary between runs.`);
  } finally {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    await generator?.close();
    if (tmpModel) await rm(tmpModel, { recursive: true, force: true });
    await keys.stop();
    await store.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:http failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
