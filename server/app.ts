// The HTTP application: health and metrics, the admin API and panel, the web chat.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { listBotInstances, type BotInstanceState } from '../bot/login-state.js';
import type { CoreConfig } from '../core/config.js';
import { coreSchema } from '../core/config.js';
import { parseEnv } from '../core/env.js';
import { partLogger, silentLogger, type Logger } from '../core/logger.js';
import type { Store } from '../core/redis.js';
import type { TextGenerator } from '../model/index.js';
import { createAdminAuth } from './admin-auth.js';
import { AdminPassword } from './admin-password.js';
import { adminRoutes, type AdminRouteDeps } from './admin-routes.js';
import { AuditLog } from '../core/audit/audit-log.js';
import { chatRoutes, type ChatRouteDeps } from './chat-routes.js';
import { serverSchema, trustProxyValue, type ServerConfig } from './config.js';
import { healthRoutes } from './health-routes.js';
import { jsonBody } from './json-body.js';
import { errorHandler, notFound } from './http-errors.js';
import { createMetrics, routeLabel, type Metrics } from './metrics.js';

export interface AppDeps {
  store: Store;
  startedAt: Date;
  /** Defaults: the schema defaults (no ADMIN_PASSWORD: a one-time password is generated on first use). */
  config?: ServerConfig;
  /** Where the admin password comes from (default: from `config`, else generated and kept in Redis). */
  adminPassword?: AdminPassword;
  /** The audit log (default: one on `store` with AUDIT_RETENTION_DAYS). */
  audit?: AuditLog;
  coreConfig?: CoreConfig;
  logger?: Logger;
  metrics?: Metrics;
  /** The (instrumented) model; absent while none is loaded. */
  generator?: TextGenerator;
  /** Every bot instance's login state (default: read from the shared Redis). */
  botStates?: () => Promise<BotInstanceState[]>;
  isStopping?: () => boolean;
  /** Services behind the admin pages and the web chat (see admin-routes.ts, chat-routes.ts). */
  admin?: Omit<AdminRouteDeps, 'store' | 'config' | 'coreConfig' | 'audit' | 'log' | 'metrics' | 'generator' | 'botStates'>;
  chat?: Omit<ChatRouteDeps, 'store' | 'log' | 'metrics' | 'config'>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const ADMIN_DIR = path.resolve(here, '..', 'admin');
const require = createRequire(import.meta.url);
// chart.js does not export its UMD build; find it next to the package's CommonJS entry.
const CHART_JS = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');

export function createApp(deps: AppDeps): Express {
  const config = deps.config ?? parseEnv(serverSchema, {});
  const coreConfig = deps.coreConfig ?? parseEnv(coreSchema, {});
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: false });
  if (deps.admin?.keys) {
    metrics.watchKeys(deps.admin.keys);
    // Fires in every process (pub/sub) for rotations made anywhere, once the key service is started.
    deps.admin.keys.onRotate((e) => metrics.keyRotations.inc({ by: e.by }));
  }
  const audit = deps.audit ?? new AuditLog(deps.store, { retentionDays: config.AUDIT_RETENTION_DAYS });
  // The bots may run in other processes: their login states are read from the shared Redis.
  const botStates = deps.botStates ?? (() => listBotInstances(deps.store));

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxyValue(config.TRUST_PROXY));
  app.set('json spaces', 0);

  // Strict CSP: every script, style, image and connection from this origin only; nothing inline.
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          ...(config.COOKIE_SECURE === 'always' ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      crossOriginEmbedderPolicy: false,
      referrerPolicy: { policy: 'no-referrer' },
    }),
  );

  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => end({ method: req.method, route: routeLabel(req, res), status: String(res.statusCode) }));
    next();
  });

  // Shutting down: probes still get their answer (/readyz says "stopping"), new work a clear 503,
  // and every answer closes its connection so clients reconnect to another process.
  app.use((req, res, next) => {
    if (!deps.isStopping?.()) {
      next();
      return;
    }
    res.set('Connection', 'close');
    if (req.path === '/readyz' || req.path === '/healthz' || req.path === '/metrics') {
      next();
      return;
    }
    res.status(503).set('Retry-After', '5').json({ error: 'The server is restarting; try again in a moment. 服务器正在重启，请稍后再试。', code: 'stopping' });
  });

  app.use(healthRoutes({ store: deps.store, startedAt: deps.startedAt, metrics, generator: deps.generator, botStates, isStopping: deps.isStopping, metricsToken: config.METRICS_TOKEN }));

  // API answers carry keys and personal data: no cache may keep them.
  app.use('/api', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  const json = jsonBody({ limit: '16kb' });
  const adminPassword = deps.adminPassword ?? new AdminPassword(deps.store, config, partLogger(log, 'admin'));
  const auth = createAdminAuth({ store: deps.store, config, audit, password: adminPassword });
  app.use('/api/admin', json, auth.router);
  app.use(
    '/api/admin',
    json,
    auth.requireAdmin,
    adminRoutes({
      ...(deps.admin ?? {}),
      store: deps.store, config, coreConfig, audit, log: partLogger(log, 'admin'), metrics, generator: deps.generator, botStates,
    }),
  );
  app.use('/api/chat', json, chatRoutes({ ...(deps.chat ?? {}), store: deps.store, log: partLogger(log, 'web-chat'), metrics, config }));
  app.use('/api', notFound);

  // Front-end: the panel under /admin, the web chat at /chat, Chart.js from node_modules.
  const noStore = { setHeaders: (res: express.Response) => res.set('Cache-Control', 'no-cache') };
  app.get('/vendor/chart.umd.min.js', (_req, res) => res.sendFile(CHART_JS, { maxAge: '1d' }));
  app.get('/', (_req, res) => res.redirect(302, '/chat'));
  app.get('/chat', (_req, res) => res.sendFile(path.join(ADMIN_DIR, 'chat.html'), { headers: { 'Cache-Control': 'no-cache' } }));
  // Relative asset URLs need the trailing slash; non-strict routing matches both forms here.
  app.get('/admin', (req, res, next) => (req.originalUrl.split('?')[0] === '/admin' ? res.redirect(302, '/admin/') : next()));
  app.use('/admin', express.static(ADMIN_DIR, { index: 'index.html', ...noStore }));

  app.use(notFound);
  app.use(errorHandler(log));
  return app;
}
