// GET/PUT /api/admin/settings: the chat's run-time settings and the loaded model's description.
import express, { type Router } from 'express';
import type { RuntimeSettings } from '../core/settings/runtime-settings.js';
import type { TextGenerator } from '../model/index.js';
import { actorOf } from './admin-auth.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import { handle, HttpError } from './http-errors.js';

export interface SettingsDeps {
  settings?: RuntimeSettings;
  generator?: TextGenerator;
  audit: AuditLog;
}

export function settingsRoutes(deps: SettingsDeps): Router {
  const router = express.Router();
  const settings = () => {
    if (!deps.settings) throw new HttpError(503, 'settings_unavailable', 'Chat settings are not available in this process');
    return deps.settings;
  };
  const model = () => {
    if (!deps.generator) return null;
    const info = deps.generator.info();
    return { ...info, queue: deps.generator.stats() };
  };

  router.get(
    '/settings',
    handle(async (_req, res) => {
      res.json({ ...(await settings().get()), model: model() });
    }),
  );

  router.put(
    '/settings',
    handle(async (req, res) => {
      const before = await settings().get();
      const view = await settings().update(req.body ?? {}, actorOf(req));
      const changed = Object.fromEntries(
        Object.entries(view.values).filter(([k, v]) => before.values[k as keyof typeof before.values] !== v).map(([k, v]) => [k, v]),
      );
      await deps.audit.record({ action: 'settings.update', actor: actorOf(req), ip: req.ip ?? '', details: { changed }, ok: true });
      res.json({ ...view, model: model() });
    }),
  );

  router.post(
    '/settings/reset',
    handle(async (req, res) => {
      const view = await settings().reset(actorOf(req));
      await deps.audit.record({ action: 'settings.reset', actor: actorOf(req), ip: req.ip ?? '', details: {}, ok: true });
      res.json({ ...view, model: model() });
    }),
  );

  return router;
}
