// /healthz (the process answers), /readyz (Redis, model and bot state) and /metrics.
import express, { type Router } from 'express';
import { describeUnreachable, type BotInstanceState } from '../bot/login-state.js';
import type { Store } from '../core/redis.js';
import { safeEqual } from './sessions.js';
import type { TextGenerator } from '../model/index.js';
import { handle } from './http-errors.js';
import type { Metrics } from './metrics.js';

export interface HealthDeps {
  store: Store;
  startedAt: Date;
  metrics: Metrics;
  generator?: TextGenerator;
  botStates?: () => Promise<BotInstanceState[]>;
  /** Set once shutdown begins, so load balancers stop sending traffic. */
  isStopping?: () => boolean;
  /** When set, /metrics needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
}

export function healthRoutes(deps: HealthDeps): Router {
  const router = express.Router();

  // Deliberately touches nothing but memory: it must stay fast while the model decodes.
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000) });
  });

  router.get(
    '/readyz',
    handle(async (_req, res) => {
      const checks: Record<string, { ok: boolean; detail?: string; [k: string]: unknown }> = {};
      try {
        const t = performance.now();
        await deps.store.redis.ping();
        checks.redis = { ok: true, latencyMs: Math.round((performance.now() - t) * 10) / 10 };
      } catch {
        // Unauthenticated: the state only; the client library's text can name hosts and ports.
        checks.redis = { ok: false, detail: 'unavailable' };
      }
      if (deps.generator) {
        const info = deps.generator.info();
        checks.model = { ok: true, name: info.name, backend: info.backend, ...deps.generator.stats() };
      } else {
        checks.model = { ok: false, detail: 'no model loaded' };
      }
      if (deps.botStates && checks.redis.ok) {
        try {
          const all = await deps.botStates();
          // A bot being logged out does not make the HTTP side unready (the web chat still
          // works); each instance is reported so an operator notices.
          checks.bot = {
            ok: true,
            instances: all.map((s) => ({
              name: s.name, running: s.running, state: s.state, since: s.since,
              ...(s.waiting ? { waiting: 'for the name to be released' } : {}),
              ...(s.running && s.unreachable ? { detail: describeUnreachable(s.unreachable), lastError: s.unreachable.lastError } : {}),
            })),
          };
        } catch {
          checks.bot = { ok: false, detail: 'state unavailable' };
        }
      }
      const stopping = deps.isStopping?.() ?? false;
      const ready = !stopping && checks.redis.ok && checks.model.ok;
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : stopping ? 'stopping' : 'not-ready', checks });
    }),
  );

  router.get(
    '/metrics',
    handle(async (req, res) => {
      if (deps.metricsToken && !safeEqual(req.get('authorization') ?? '', `Bearer ${deps.metricsToken}`)) {
        res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'Metrics need a bearer token (METRICS_TOKEN)', code: 'unauthenticated' });
        return;
      }
      res.set('Content-Type', deps.metrics.registry.contentType);
      res.send(await deps.metrics.registry.metrics());
    }),
  );

  return router;
}
