// Prometheus metrics (prom-client) served at /metrics. One registry per app, so tests and several
// apps in one process do not collide. Generation metrics come from wrapping the TextGenerator
// (see instrumentGenerator); message and key metrics from the places that handle them.
import type { Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GenerationRequest, GenerationResult, TextGenerator } from '../model/index.js';

export interface Metrics {
  registry: Registry;
  messages: Counter<'channel' | 'outcome'>;
  tokens: Counter<'kind'>;
  generationLatency: Histogram<'finish'>;
  generationErrors: Counter<'error'>;
  keyRotations: Counter<'by'>;
  failedKeyAttempts: Counter;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Queue depth and active generations are read from the generator at scrape time. */
  watchGenerator(generator: TextGenerator | undefined): void;
  /** Failed key attempts are read from the key service (all processes, all channels) at scrape time. */
  watchKeys(keys: { failedAttempts(): Promise<number> } | undefined): void;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'nemo_' });
  let generator: TextGenerator | undefined;
  let keys: { failedAttempts(): Promise<number> } | undefined;

  const messages = new Counter({
    name: 'nemo_messages_total',
    help: 'Chat messages handled, by channel (wechat, web) and outcome (replied, rejected, limited, error, ...)',
    labelNames: ['channel', 'outcome'] as const,
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'nemo_tokens_total',
    help: 'Tokens processed by the model: prompt (read) and completion (generated)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const generationLatency = new Histogram({
    name: 'nemo_generation_latency_seconds',
    help: 'Time from a generation request to its last token, queueing included',
    labelNames: ['finish'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
    registers: [registry],
  });
  const generationErrors = new Counter({
    name: 'nemo_generation_errors_total',
    help: 'Generation requests that failed (busy, timeout, other)',
    labelNames: ['error'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'nemo_generation_queue_depth',
    help: 'Generation requests waiting for a decoding slot',
    registers: [registry],
    collect() {
      this.set(generator?.stats().queued ?? 0);
    },
  });
  new Gauge({
    name: 'nemo_generation_active',
    help: 'Generations being decoded right now',
    registers: [registry],
    collect() {
      this.set(generator?.stats().active ?? 0);
    },
  });
  const keyRotations = new Counter({
    name: 'nemo_key_rotations_total',
    help: 'Access-key rotations seen by this process (any process may rotate), by trigger (schedule, admin, cli)',
    labelNames: ['by'] as const,
    registers: [registry],
  });
  const failedKeyAttempts = new Counter({
    name: 'nemo_key_failed_attempts_total',
    help: 'Wrong access-key attempts on every channel, counted in Redis by the key service (all processes)',
    registers: [registry],
    async collect() {
      if (!keys) return;
      try {
        const total = await keys.failedAttempts();
        this.reset();
        this.inc(total);
      } catch {
        // Redis away: keep the last value rather than failing the whole scrape.
      }
    },
  });
  const httpDuration = new Histogram({
    name: 'nemo_http_request_duration_seconds',
    help: 'HTTP request durations',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });

  return {
    registry, messages, tokens, generationLatency, generationErrors, keyRotations, failedKeyAttempts, httpDuration,
    watchGenerator(g) {
      generator = g;
    },
    watchKeys(k) {
      keys = k;
    },
  };
}

/** The route label of every request no route pattern answered (unknown paths, refused logins). */
export const UNMATCHED_ROUTE = '<unmatched>';

/**
 * Remembers the matched route pattern, mount path included, while the request is inside its
 * router: once an error leaves the router express restores `req.baseUrl`, so it is read here.
 */
export function noteRoute(req: Request, res: Response): void {
  if (req.route?.path !== undefined) res.locals.routePattern = `${req.baseUrl}${String(req.route.path)}`;
}

/**
 * The `route` label: a pattern (`/api/admin/users/:id/ban`), never the raw path, so anyone sending
 * made-up paths cannot add series. Static files share their mount's bucket.
 */
export function routeLabel(req: Request, res: Response): string {
  const noted = res.locals.routePattern as string | undefined;
  if (noted) return noted;
  if (req.route?.path !== undefined) return `${req.baseUrl}${String(req.route.path)}`;
  if (res.statusCode < 400 && req.baseUrl) return `${req.baseUrl}/*`;
  return UNMATCHED_ROUTE;
}

/**
 * The same TextGenerator, counting tokens, latency and errors into `metrics`. The bot and the web
 * chat both receive the wrapped generator, so every generation is measured once.
 */
export function instrumentGenerator(inner: TextGenerator, metrics: Metrics): TextGenerator {
  metrics.watchGenerator(inner);
  // Decode speed seen by chats (completion tokens per second of generation, smoothed), shown on the
  // Settings page when the model service does not measure its own.
  let tokensPerSecond: number | undefined;
  return {
    info: () => {
      const info = inner.info();
      return info.tokensPerSecond === undefined && tokensPerSecond !== undefined ? { ...info, tokensPerSecond } : info;
    },
    countTokens: (text) => inner.countTokens(text),
    decode: (ids) => inner.decode(ids),
    chatFormat: () => inner.chatFormat(),
    stats: () => inner.stats(),
    close: () => inner.close(),
    async generate(request: GenerationRequest): Promise<GenerationResult> {
      const started = performance.now();
      try {
        const result = await inner.generate(request);
        metrics.tokens.inc({ kind: 'prompt' }, result.promptTokens);
        metrics.tokens.inc({ kind: 'completion' }, result.completionTokens);
        metrics.generationLatency.observe({ finish: result.finishReason }, (performance.now() - started) / 1000);
        if (result.completionTokens >= 4 && result.latencyMs > 0) {
          const rate = result.completionTokens / (result.latencyMs / 1000);
          tokensPerSecond = tokensPerSecond === undefined ? rate : 0.8 * tokensPerSecond + 0.2 * rate;
        }
        return result;
      } catch (err) {
        const name = err instanceof Error ? err.name : 'Error';
        metrics.generationErrors.inc({ error: name === 'GeneratorBusyError' ? 'busy' : name === 'GeneratorTimeoutError' ? 'timeout' : 'other' });
        throw err;
      }
    },
  };
}

/** A usage recorder (UsageSink) that also counts every chat message into `metrics`, by channel and outcome. */
export function instrumentUsage<U extends { record(e: { channel: string; outcome: string }): Promise<void> }>(usage: U, metrics: Metrics): U {
  return new Proxy(usage, {
    get(target, prop, receiver) {
      if (prop === 'record') {
        return (e: Parameters<U['record']>[0]) => {
          metrics.messages.inc({ channel: e.channel, outcome: e.outcome });
          return target.record(e);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
