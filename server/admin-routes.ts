// The admin JSON API behind the panel (mounted under /api/admin after requireAdmin, so every
// handler here runs with a live session and, for state-changing methods, a checked CSRF token).
import express, { type Request, type Router } from 'express';
import QRCode from 'qrcode';
import cronstrue from 'cronstrue';
import { z } from 'zod';
import { BOT_NAME_PATTERN, DEFAULT_BOT_NAME, type BotInstanceState } from '../bot/login-state.js';
import type { CoreConfig } from '../core/config.js';
import { InvalidScheduleError, type KeyService } from '../core/keys/key-service.js';
import { nextRuns, validateSchedule } from '../core/keys/schedule.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../core/redis.js';
import type { TextGenerator } from '../model/index.js';
import { actorOf } from './admin-auth.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import type { ServerConfig } from './config.js';
import { handle, HttpError } from './http-errors.js';
import type { Metrics } from './metrics.js';
import { usageRoutes, type UsageSource } from './usage-routes.js';
import { usersRoutes, type UsersDeps } from './users-routes.js';
import { settingsRoutes, type SettingsDeps } from './settings-routes.js';
import { modelsRoutes, type ModelsDeps } from './models-routes.js';

export interface AdminRouteDeps {
  store: Store;
  config: ServerConfig;
  coreConfig: CoreConfig;
  audit: AuditLog;
  log: Logger;
  metrics: Metrics;
  generator?: TextGenerator;
  botStates?: () => Promise<BotInstanceState[]>;
  keys?: KeyService;
  usage?: UsageSource;
  users?: Omit<UsersDeps, 'keys' | 'audit' | 'usage'> & { usage?: UsersDeps['usage'] };
  settings?: Omit<SettingsDeps, 'audit' | 'generator'>;
  models?: Omit<ModelsDeps, 'audit' | 'modelsDir'>;
}

export const SCHEDULE_PRESETS = [
  { id: 'daily', label: 'Daily at midnight', cron: '0 0 * * *' },
  { id: 'twice-daily', label: 'Twice a day (00:00, 12:00)', cron: '0 0,12 * * *' },
  { id: 'weekly', label: 'Weekly, Monday 00:00', cron: '0 0 * * 1' },
  { id: 'hourly', label: 'Every hour', cron: '0 * * * *' },
];

/** A human-readable description of a cron expression ("At 12:00 AM, only on Monday"). */
export function describeCron(cron: string): string {
  try {
    return cronstrue.toString(cron, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return '';
  }
}

const MAX_U64 = 2n ** 64n - 1n;

/** A Redis stream id as Redis reads it (two unsigned 64-bit numbers), or null. */
function streamId(raw: unknown): string | null {
  if (typeof raw !== 'string' || !/^\d{1,20}-\d{1,20}$/.test(raw)) return null;
  return raw.split('-').every((part) => BigInt(part) <= MAX_U64) ? raw : null;
}

const scheduleBody = z.object({ cron: z.string().max(200), tz: z.string().max(64) });

export function adminRoutes(deps: AdminRouteDeps): Router {
  const router = express.Router();
  const { audit } = deps;
  const record = (req: Request, action: string, details: Record<string, unknown> = {}, ok = true) =>
    audit.record({ action, actor: actorOf(req), ip: req.ip ?? '', details, ok });

  const keys = (): KeyService => {
    if (!deps.keys) throw new HttpError(503, 'keys_unavailable', 'The key service is not running in this process');
    return deps.keys;
  };
  const grace = { graceMinutes: deps.coreConfig.KEY_GRACE_MINUTES };

  // ------------------------------------------------------------------ keys
  router.get(
    '/keys/current',
    handle(async (_req, res) => {
      const cur = await keys().current();
      res.json({ ...cur, ...grace, keyLength: deps.coreConfig.KEY_LENGTH, caption: deps.config.KEY_CARD_CAPTION });
    }),
  );

  router.post(
    '/keys/rotate',
    handle(async (req, res) => {
      const cur = await keys().rotate('admin', actorOf(req));
      await record(req, 'keys.rotate', { version: cur.version });
      res.json({ ...cur, ...grace, keyLength: deps.coreConfig.KEY_LENGTH, caption: deps.config.KEY_CARD_CAPTION });
    }),
  );

  const scheduleView = (s: Awaited<ReturnType<KeyService['getSchedule']>>) => ({
    ...s,
    description: describeCron(s.cron),
    ...grace,
    presets: SCHEDULE_PRESETS,
  });

  router.get(
    '/keys/schedule',
    handle(async (_req, res) => {
      res.json(scheduleView(await keys().getSchedule()));
    }),
  );

  router.put(
    '/keys/schedule',
    handle(async (req, res) => {
      const body = scheduleBody.parse(req.body ?? {});
      try {
        const s = await keys().setSchedule(body.cron, body.tz, actorOf(req));
        await record(req, 'keys.schedule', { cron: s.cron, tz: s.tz });
        res.json(scheduleView(s));
      } catch (err) {
        if (err instanceof InvalidScheduleError) {
          await record(req, 'keys.schedule', { cron: body.cron, tz: body.tz, error: err.message }, false);
          throw new HttpError(400, 'invalid_schedule', err.message);
        }
        throw err;
      }
    }),
  );

  // Live preview while the operator types: description and next runs, nothing stored.
  router.get(
    '/keys/schedule/preview',
    handle(async (req, res) => {
      try {
        const s = validateSchedule(String(req.query.cron ?? ''), String(req.query.tz ?? ''));
        res.json({ cron: s.cron, tz: s.tz, description: describeCron(s.cron), nextRuns: nextRuns(s, 5, new Date()).map((d) => d.toISOString()) });
      } catch (err) {
        if (err instanceof InvalidScheduleError) throw new HttpError(400, 'invalid_schedule', err.message);
        throw err;
      }
    }),
  );

  router.get(
    '/keys/history',
    handle(async (req, res) => {
      const limit = Math.min(Math.max(Number(req.query.limit) || 50, 1), 500);
      res.json({ items: await keys().history(limit) });
    }),
  );

  // ------------------------------------------------------------------ usage
  router.use(usageRoutes({ usage: deps.usage, keys: deps.keys, cacheMs: deps.config.USAGE_CACHE_MS }));

  // ------------------------------------------------------------------ users and settings
  router.use(usersRoutes({ ...(deps.users ?? {}), keys: deps.keys, audit }));
  router.use(settingsRoutes({ ...(deps.settings ?? {}), audit, generator: deps.generator }));
  router.use(modelsRoutes({ ...(deps.models ?? {}), audit, modelsDir: deps.config.MODELS_DIR }));

  // ------------------------------------------------------------------ the WeChat bot
  const botStates = async (): Promise<BotInstanceState[]> => (deps.botStates ? deps.botStates() : []);

  router.get(
    '/bot',
    handle(async (_req, res) => {
      // Every bot instance (BOT_NAME) that ran on this Redis. The QR payload is a login URL: the
      // panel fetches the rendered image instead. A state left by a process that is gone
      // (running: false) is shown as such, without its QR code.
      const instances = (await botStates()).map((s) => ({
        name: s.name, running: s.running, host: s.host, pid: s.pid,
        state: s.state, since: s.since, user: s.user, detail: s.detail, qrcode: Boolean(s.qrcode) && s.running && s.state !== 'logged-in',
        waiting: s.waiting ?? null,
        // Only a running bot is still trying; `since` is then when its failures began.
        unreachable: s.running ? (s.unreachable ?? null) : null,
      }));
      res.json({ instances });
    }),
  );

  router.get(
    '/bot/qr.svg',
    handle(async (req, res) => {
      const name = typeof req.query.name === 'string' && BOT_NAME_PATTERN.test(req.query.name) ? req.query.name : DEFAULT_BOT_NAME;
      const s = (await botStates()).find((b) => b.name === name);
      if (!s?.qrcode || !s.running || s.state === 'logged-in') throw new HttpError(404, 'no_qrcode', 'No login QR code right now');
      const svg = await QRCode.toString(s.qrcode, { type: 'svg', errorCorrectionLevel: 'M', margin: 1 });
      res.set('Content-Type', 'image/svg+xml').set('Cache-Control', 'no-store').send(svg);
    }),
  );

  // ------------------------------------------------------------------ audit log
  router.get(
    '/audit',
    handle(async (req, res) => {
      const limit = Math.min(Math.max(Number(req.query.limit) || 100, 1), 500);
      const before = req.query.before === undefined ? undefined : streamId(req.query.before);
      if (before === null) throw new HttpError(400, 'invalid_request', 'before: expected an audit entry id (<milliseconds>-<sequence>)');
      res.json({ items: await audit.list(limit, before) });
    }),
  );

  return router;
}
