// The HTTP application: health now; the admin API, panel and web chat join here.
import express, { type Express } from 'express';
import type { Store } from '../core/redis.js';

export interface AppDeps {
  store: Store;
  startedAt: Date;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000) });
  });
  return app;
}
