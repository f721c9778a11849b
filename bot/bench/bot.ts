// npm run bench:bot — the bot's own path (dedup, ban check, key check, limits, memory, usage,
// reply) through Wechaty and the mock puppet with 1,000 users, on the real Redis. Model time is
// EXCLUDED here by a trivial generator (labelled as such) and measured separately with the real
// generation service on the shipped (or a tiny) model.
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import cliProgress from 'cli-progress';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { tuneGc } from '../../core/gc-tuning.js';
import { KeyService } from '../../core/keys/key-service.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { createGenerator, DEFAULT_MODEL_DIR } from '../../model/index.js';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { ChatSession } from '../chat-session.js';
import { defaultBotConfig } from '../config.js';
import { WechatyChatBot, type HandledMessage } from '../wechaty-bot.js';
import { TrivialGenerator } from './trivial-generator.js';

const HELP = `Usage: npm run bench:bot [-- options]

Measures the bot's own per-message path through Wechaty + wechaty-puppet-mock on the real Redis
(REDIS_URL, default redis://127.0.0.1:6379/0; keys under a throw-away prefix, deleted after).
Model time is excluded with a trivial generator and measured separately.

Options:
  --users N          simulated chatters (default 1000)
  --messages N       messages per user in the throughput phase (default 4; 1 more is used for latency)
  --concurrency N    messages in flight in the throughput phase (default 64)
  --model DIR        model for the separate model-time measurement (default: model/shipped, else a tiny one)
  --model-runs N     replies generated for the model-time measurement (default 5; 0 skips it)
  --without-usage    DIAGNOSTIC: skip usage recording, to see what it costs (not a real deployment)
  --heap-sample      DIAGNOSTIC: after the latency phase, two more one-at-a-time phases under V8's
                     sampling heap profiler: where the path allocates, and which allocations
                     outlive a young-generation GC (what makes scavenges long), by package
  --v8-pretenuring   DIAGNOSTIC: keep V8's allocation-site pretenuring on (npm start turns it off,
                     core/gc-tuning.ts), for comparison
  --shared-autopipeline  DIAGNOSTIC: ioredis auto-pipelining on the shared connection the bot path
                     uses (the layout before it was confined to key verification), for comparison
  --json             print the results as JSON
  -h, --help         this help`;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * Nanoseconds a thread has spent waiting for a CPU while runnable (Linux schedstat, field 2), or
 * null elsewhere. It tells a slow message that was doing work from one that was ready but not
 * scheduled (a busy machine), which the latency alone cannot.
 */
function runQueueWaitNs(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      messages: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '64' },
      model: { type: 'string' },
      'model-runs': { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      'without-usage': { type: 'boolean', default: false },
      'shared-autopipeline': { type: 'boolean', default: false },
      'heap-sample': { type: 'boolean', default: false },
      'v8-pretenuring': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const users = Number(values.users);
  const perUser = Number(values.messages);
  const concurrency = Number(values.concurrency);
  const modelRuns = Number(values['model-runs']);
  for (const [name, v] of [['users', users], ['messages', perUser], ['concurrency', concurrency], ['model-runs', modelRuns]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);
  }
  const log = (s: string) => {
    if (!values.json) console.log(s);
  };

  // The platform process's V8 settings (npm start applies them too).
  if (!values['v8-pretenuring']) tuneGc();
  const store = await openTestStore('bench-bot');
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  if (values['shared-autopipeline']) store.redis.options.enableAutoPipelining = true;
  const usage = new UsageRecorder(store, core);
  // Defaults of a real deployment (6 messages/minute, 100/day, memory on): each user stays within them.
  const config = defaultBotConfig();
  const generator = new TrivialGenerator();
  const noUsage = { record: async () => undefined, touchUser: async () => undefined };
  const session = new ChatSession({
    store, keys, usage: values['without-usage'] ? noUsage : usage, generator, config, keyShape: { length: core.KEY_LENGTH, alphabet: core.KEY_ALPHABET },
  });
  const mocker = new mock.Mocker();
  const puppet = new PuppetMock({ mocker });
  let onHandled: (h: HandledMessage) => void = () => undefined;
  const bot = new WechatyChatBot({ store, session, config, puppet, onHandled: (h) => h.result !== 'self' && onHandled(h) });
  const loggedIn = new Promise<void>((r) => bot.wechaty.once('login', () => r()));
  await bot.start();
  const me = mocker.createContact({ id: 'bench-bot', name: 'Nemo' });
  mocker.login(me);
  await loggedIn;

  try {
    const redisCpuSeconds = async () => {
      const info = await store.redis.info('cpu');
      const get = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
      return get('used_cpu_sys') + get('used_cpu_user');
    };
    // redis-server's pid, when it runs on this machine (its run-queue waits are part of a reply).
    const redisPid = await (async () => {
      const pid = Number(/^process_id:(\d+)/m.exec(await store.redis.info('server'))?.[1]);
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis') ? pid : null;
      } catch {
        return null;
      }
    })();
    const { key } = await keys.current();
    const contacts = Array.from({ length: users }, (_, i) => mocker.createContact({ id: `user-${i}`, name: `User ${i}` }));
    // Authorise everyone up front (the key flow itself is covered by bench:keys).
    await Promise.all(contacts.map((c) => keys.verify(c.id, key)));

    const run = async (label: string, total: number, inFlight: number, pick: (i: number) => typeof contacts[number]) => {
      const latencies: number[] = [];
      // Tail diagnosis: GC pauses in the phase and, with one message in flight (so the time between
      // two replies belongs to one message), how long node and redis-server waited for a CPU.
      const gcPauses: { start: number; end: number }[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, end: e.startTime + e.duration });
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      const perMessage: { start: number; end: number; latency: number; waitMs: number | null }[] = [];
      const waitNow = () => {
        if (inFlight !== 1) return null;
        const a = runQueueWaitNs(process.pid);
        const b = redisPid ? runQueueWaitNs(redisPid) : 0;
        return a === null || b === null ? null : a + b;
      };
      let lastWait = waitNow();
      const settled: number[] = [];
      const kinds = new Map<string, number>();
      const bar = values.json ? null : new cliProgress.SingleBar({ format: `${label} |{bar}| {value}/{total} msgs` }, cliProgress.Presets.shades_classic);
      bar?.start(total, 0);
      let sent = 0;
      let done = 0;
      const redisCpu0 = await redisCpuSeconds();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const sendNext = () => {
          if (sent >= total) return;
          const c = pick(sent++);
          void c.say(`message ${sent} from ${c.id}: how is the weather today?`).to(me);
        };
        onHandled = (h) => {
          latencies.push(h.latencyMs);
          const now = performance.now();
          const w = waitNow();
          perMessage.push({ start: now - h.latencyMs, end: now, latency: h.latencyMs, waitMs: w !== null && lastWait !== null ? (w - lastWait) / 1e6 : null });
          lastWait = w;
          settled.push(h.settledMs);
          const kind = h.reply?.kind ?? h.result;
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          done++;
          bar?.update(done);
          if (done >= total) resolve();
          else sendNext();
        };
        for (let i = 0; i < Math.min(inFlight, total); i++) sendNext();
      });
      const seconds = (performance.now() - t0) / 1000;
      gcObserver.disconnect();
      const cpu = process.cpuUsage(cpu0);
      const redisCpu = (await redisCpuSeconds()) - redisCpu0;
      bar?.stop();
      latencies.sort((a, b) => a - b);
      settled.sort((a, b) => a - b);
      const slowest = [...perMessage].sort((a, b) => b.latency - a.latency).slice(0, Math.max(1, Math.ceil(total / 100)));
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const waits = slowest.map((m) => m.waitMs).filter((x): x is number => x !== null);
      const tail = {
        messages: slowest.length,
        meanMs: round(mean(slowest.map((m) => m.latency)), 2),
        // Runnable but not running: node's main thread + redis-server (1 in flight, Linux only).
        meanCpuWaitMs: waits.length === slowest.length ? round(mean(waits), 2) : null,
        withGcPause: slowest.filter((m) => gcPauses.some((g) => g.start < m.end && g.end > m.start)).length,
      };
      const gc = { pauses: gcPauses.length, maxMs: round(Math.max(0, ...gcPauses.map((g) => g.end - g.start)), 1) };
      return {
        messages: total, concurrency: inFlight, seconds: round(seconds, 3), messagesPerSecond: round(total / seconds, 0),
        // Receipt → last reply part sent (what the chatter waits for).
        p50Ms: round(pct(latencies, 50), 3), p99Ms: round(pct(latencies, 99), 3), maxMs: round(latencies.at(-1) ?? NaN, 3),
        // Receipt → memory and usage written too (bookkeeping runs after the reply is sent).
        settledP50Ms: round(pct(settled, 50), 3), settledP99Ms: round(pct(settled, 99), 3),
        // CPU per message, independent of how busy the machine is: this process (bot, Wechaty, mock,
        // ioredis) and redis-server (shared with other users of that server, so an upper bound).
        nodeCpuUsPerMessage: round((cpu.user + cpu.system) / total, 0),
        redisCpuUsPerMessage: round((redisCpu * 1e6) / total, 0),
        outcomes: Object.fromEntries(kinds),
        // Why the slowest 1 % were slow (see the latency line of the report).
        slowest1Percent: tail, gc,
      };
    };

    if (values['without-usage']) log('DIAGNOSTIC: usage recording is OFF in this run');
    if (values['shared-autopipeline']) log('DIAGNOSTIC: ioredis auto-pipelining is ON for the shared connection in this run');
    if (values['v8-pretenuring']) log('DIAGNOSTIC: V8 allocation-site pretenuring is ON in this run (npm start turns it off)');
    log(`bot path benchmark: ${users} users, trivial generator (model time excluded), Redis at ${store.redis.options.host}:${store.redis.options.port}`);
    // Latency: one message at a time (pure per-message overhead, no queueing behind others).
    const latency = await run('latency   ', users, 1, (i) => contacts[i % users]);
    if (values['heap-sample']) {
      for (const survivorsOnly of [false, true]) {
        const { bytes, top, sites } = await heapSample(survivorsOnly, () => run(survivorsOnly ? 'heap: kept' : 'heap: all ', users, 1, (i) => contacts[i % users]));
        log(`${survivorsOnly ? 'outlived a scavenge' : 'allocated'}: ${Math.round(bytes / users / 100) / 10} KB per message (sampled); by package: ${top.map(([k, v]) => `${k} ${Math.round((100 * v) / bytes)}%`).join(', ')}`);
        log(`  top sites: ${sites.map(([k, v]) => `${k} ${Math.round((100 * v) / bytes)}%`).join('; ')}`);
      }
    }
    // Throughput: many in flight, as a busy bot sees them.
    const throughput = await run('throughput', users * perUser, concurrency, (i) => contacts[i % users]);

    // Where the CPU goes: the usage recording alone (core/usage, one Lua script call per message), same load.
    const usageCost = await (async () => {
      const n = 2000;
      let i = 0;
      const c0 = process.cpuUsage();
      const r0 = await redisCpuSeconds();
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (i < n) {
          const k = i++;
          await usage.record({ userId: contacts[k % users].id, channel: 'wechat', tokensIn: 12, tokensOut: 3, latencyMs: 1, outcome: 'ok' });
        }
      }));
      const c = process.cpuUsage(c0);
      return { nodeCpuUsPerRecord: round((c.user + c.system) / n, 0), redisCpuUsPerRecord: round(((await redisCpuSeconds()) - r0) * 1e6 / n, 0) };
    })();

    let modelTime: Record<string, unknown> | null = null;
    if (modelRuns > 0) modelTime = await measureModel(values.model, modelRuns, session, log);

    const result = {
      machine: `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      note: 'bot path measured with a TRIVIAL generator (model time excluded); model time measured separately'
        + (values['without-usage'] ? '; DIAGNOSTIC RUN WITHOUT USAGE RECORDING' : '')
        + (values['shared-autopipeline'] ? '; DIAGNOSTIC RUN WITH AUTO-PIPELINING ON THE SHARED CONNECTION' : '')
        + (values['v8-pretenuring'] ? '; DIAGNOSTIC RUN WITH V8 PRETENURING ON' : ''),
      users, latency, throughput, usageRecordCost: usageCost, modelTime,
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      log(`latency   (1 in flight):  reply sent p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms; incl. memory+usage writes p50 ${latency.settledP50Ms} ms, p99 ${latency.settledP99Ms} ms (${latency.messagesPerSecond} msg/s)`);
      const t = latency.slowest1Percent;
      log(`  slowest 1% (${t.messages}): mean ${t.meanMs} ms; ${t.meanCpuWaitMs === null ? 'CPU wait n/a' : `of which ${t.meanCpuWaitMs} ms waiting for a CPU (node + redis-server run queue)`}; ${t.withGcPause} overlapped a GC pause (${latency.gc.pauses} pauses in the phase, longest ${latency.gc.maxMs} ms)`);
      log(`throughput (${concurrency} in flight): ${throughput.messagesPerSecond} messages/s, p50 ${throughput.p50Ms} ms, p99 ${throughput.p99Ms} ms`);
      log(`CPU per message: node ${throughput.nodeCpuUsPerMessage} µs + redis-server ${throughput.redisCpuUsPerMessage} µs`);
      log(`  of which usage.record (core/usage): node ${usageCost.nodeCpuUsPerRecord} µs + redis-server ${usageCost.redisCpuUsPerRecord} µs`);
      log(`outcomes: ${JSON.stringify(throughput.outcomes)}`);
      if (modelTime) log(`model time (separate): ${JSON.stringify(modelTime)}`);
      log(`machine: ${result.machine}`);
    }
  } finally {
    await bot.stop();
    await keys.stop();
    await store.cleanup();
  }
}

/**
 * Bytes allocated while `phase` runs, by package, from V8's sampling heap profiler. With
 * `survivorsOnly`, only allocations still alive after young-generation GCs count (promoted ones
 * that died later in a full GC included): what scavenges had to copy.
 */
async function heapSample<T>(
  survivorsOnly: boolean, phase: () => Promise<T>,
): Promise<{ bytes: number; top: [string, number][]; sites: [string, number][] }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivorsOnly,
    } as never);
    await phase();
    // Garbage still in the young generation would count as kept: collect it first.
    minorGc();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    const byPackage = new Map<string, number>();
    const bySite = new Map<string, number>();
    let bytes = 0;
    const walk = (n: HeapNode, owner: string, site: string) => {
      const pkg = packageOf(n.callFrame.url);
      const here = pkg ?? owner;
      const where = pkg ? `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : site;
      if (n.selfSize) {
        byPackage.set(here, (byPackage.get(here) ?? 0) + n.selfSize);
        bySite.set(where, (bySite.get(where) ?? 0) + n.selfSize);
        bytes += n.selfSize;
      }
      for (const c of n.children) walk(c, here, where);
    };
    walk(profile.head, '(vm)', '(vm)');
    const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
    return { bytes, top: top(byPackage, 8), sites: top(bySite, 12) };
  } finally {
    session.disconnect();
  }
}

/** A young-generation GC now (V8's gc() is made available for this diagnostic only). */
function minorGc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as (o: { type: 'minor' }) => void)({ type: 'minor' });
}

interface HeapNode {
  callFrame: { url: string; functionName: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** node_modules/<package>, our top folder, or node's own; null for frames without a script (natives). */
function packageOf(url: string): string | null {
  if (!url) return null;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node';
  const ours = /\/work\/[^/]+\/([^/]+)\//.exec(url) ?? /\/(bot|core|server|model)\//.exec(url);
  return ours ? ours[1] : url.split('/').slice(-2).join('/');
}

/** Time the real generation service needs for one chat reply with the bot's sampling settings. */
async function measureModel(modelDir: string | undefined, runs: number, session: ChatSession, log: (s: string) => void): Promise<Record<string, unknown>> {
  let dir = modelDir ?? (existsSync(path.join(DEFAULT_MODEL_DIR, 'config.json')) ? DEFAULT_MODEL_DIR : '');
  let tmp = '';
  let label = dir === DEFAULT_MODEL_DIR ? 'shipped model' : dir;
  if (!dir) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'nemo-bench-model-'));
    await createTinyModel(tmp, { nPositions: 256 });
    dir = tmp;
    label = 'tiny random model (no shipped model found)';
  }
  log(`measuring model time on the ${label} …`);
  const generator = await createGenerator({ modelDir: dir });
  try {
    const info = generator.info();
    const times: number[] = [];
    const tokens: number[] = [];
    const sampling = { ...session.sampling(), maxNewTokens: Math.min(session.config.BOT_MAX_NEW_TOKENS, Math.floor(info.contextLength / 2)) };
    for (let i = 0; i < runs; i++) {
      const r = await generator.generate({ prompt: `User: hello, how is the weather today? (${i})\nBot:`, ...sampling, seed: i });
      times.push(r.latencyMs);
      tokens.push(r.completionTokens);
    }
    times.sort((a, b) => a - b);
    return {
      model: label, parameters: info.parameters, backend: info.backend, runs,
      maxNewTokens: sampling.maxNewTokens, meanCompletionTokens: round(tokens.reduce((a, b) => a + b, 0) / runs, 1),
      p50Ms: round(pct(times, 50), 1), maxMs: round(times.at(-1) ?? NaN, 1),
      msPerToken: round(times.reduce((a, b) => a + b, 0) / Math.max(1, tokens.reduce((a, b) => a + b, 0)), 2),
    };
  } finally {
    await generator.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:bot failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
