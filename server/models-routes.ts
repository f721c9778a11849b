// GET /api/admin/models: the models to choose from (model/shipped and the folders under
// MODELS_DIR), the one chosen for every process and the one this process serves.
// POST /api/admin/models/active {name}: choose a model; every process switches to it live.
// POST /api/admin/models/download {preset}: download a preset into MODELS_DIR (progress in GET).
import express, { type Router } from 'express';
import { z } from 'zod';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DOWNLOAD_PRESETS, listModels } from '../model/index.js';
import { actorOf } from './admin-auth.js';
import type { ActiveModel } from './active-model.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import { handle, HttpError } from './http-errors.js';
import type { ModelControl } from './model-control.js';
import { DownloadBusyError, type ModelDownloads } from './model-downloads.js';

export interface ModelsDeps {
  active?: ActiveModel;
  /** This process's model switching (absent: no model is served here). */
  control?: ModelControl;
  downloads?: ModelDownloads;
  modelsDir: string;
  audit: AuditLog;
  /** Decode speed the chats see on the model this process serves (tokens/s), once measured. */
  speed?: () => number | undefined;
}

const activateBody = z.object({ name: z.string().min(1).max(64) });
const downloadBody = z.object({ preset: z.string().min(1).max(64) });

export function modelsRoutes(deps: ModelsDeps): Router {
  const router = express.Router();
  const active = () => {
    if (!deps.active) throw new HttpError(503, 'models_unavailable', 'Model choice is not available in this process');
    return deps.active;
  };

  // The last speed measured on each model this process has served (by folder).
  const measured = new Map<string, number>();
  const view = async () => {
    const chosen = await active().get();
    const status = deps.control?.status() ?? null;
    const speed = deps.speed?.();
    if (status?.servingDir && speed !== undefined) measured.set(status.servingDir, speed);
    const models = (await listModels(deps.modelsDir)).map((m) => ({
      ...m, active: chosen ? chosen.name === m.name : status?.servingDir === m.dir, serving: status?.servingDir === m.dir,
      tokensPerSecond: measured.get(m.dir) ?? null,
    }));
    const presets = Object.entries(DOWNLOAD_PRESETS).map(([name, p]) => ({
      name, description: p.description, folder: p.dir, installed: existsSync(path.join(deps.modelsDir, p.dir, p.files[p.files.length - 1])),
    }));
    const download = (await deps.downloads?.state()) ?? null;
    return { models, chosen, process: status, modelsDir: deps.modelsDir, presets, download };
  };

  router.get(
    '/models',
    handle(async (_req, res) => {
      res.json(await view());
    }),
  );

  router.post(
    '/models/active',
    handle(async (req, res) => {
      const { name } = activateBody.parse(req.body ?? {});
      const entry = (await listModels(deps.modelsDir)).find((m) => m.name === name);
      const record = (ok: boolean, details: Record<string, unknown>) =>
        deps.audit.record({ action: 'models.activate', actor: actorOf(req), ip: req.ip ?? '', details: { name, ...details }, ok });
      if (!entry) {
        await record(false, { error: 'unknown model' });
        throw new HttpError(404, 'unknown_model', `There is no model "${name}" (the shipped one, or a folder in ${deps.modelsDir})`);
      }
      if (entry.error) {
        await record(false, { error: entry.error });
        throw new HttpError(400, 'model_unusable', `The model "${name}" cannot be used: ${entry.error}`);
      }
      await active().set(name, actorOf(req));
      await record(true, { dir: entry.dir, chatFormat: entry.chatFormat });
      res.status(202).json(await view());
    }),
  );

  router.post(
    '/models/download',
    handle(async (req, res) => {
      const { preset } = downloadBody.parse(req.body ?? {});
      if (!deps.downloads) throw new HttpError(503, 'downloads_unavailable', 'Downloads are not available in this process');
      if (!DOWNLOAD_PRESETS[preset]) {
        throw new HttpError(404, 'unknown_preset', `There is no preset "${preset}" (${Object.keys(DOWNLOAD_PRESETS).join(', ')})`);
      }
      const actor = actorOf(req);
      const ip = req.ip ?? '';
      try {
        await deps.downloads.start(preset, actor, (s) => {
          void deps.audit.record({ action: 'models.download', actor, ip, details: { preset, status: s.status, ...(s.error ? { error: s.error } : {}) }, ok: s.status === 'done' });
        });
      } catch (err) {
        if (err instanceof DownloadBusyError) throw new HttpError(409, 'download_running', `A download of ${err.preset} is already running; wait for it to finish`);
        throw err;
      }
      await deps.audit.record({ action: 'models.download', actor, ip, details: { preset, status: 'started' }, ok: true });
      res.status(202).json(await view());
    }),
  );

  return router;
}
