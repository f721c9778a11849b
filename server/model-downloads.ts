// Downloads started from the Models page: a preset's files into MODELS_DIR/<preset folder> on
// this process's host, one at a time across all processes (a Redis lock), with the progress kept
// in Redis so that any process can show it. Offline, the state says so in the downloader's words.
import path from 'node:path';
import { guard, type Store } from '../core/redis.js';
import type { Logger } from '../core/logger.js';
import { DOWNLOAD_PRESETS, downloadModel, type ModelDownloadProgress } from '../model/index.js';

export interface DownloadState {
  preset: string;
  status: 'running' | 'done' | 'failed';
  actor?: string;
  startedAt: string;
  finishedAt?: string;
  file?: string;
  fileIndex?: number;
  files?: number;
  received?: number;
  total?: number;
  error?: string;
}

/** The lock outlives a silent download this long (progress renews it). */
const LOCK_MS = 120_000;
const PROGRESS_EVERY_MS = 500;

export class DownloadBusyError extends Error {
  constructor(readonly preset: string) {
    super(`a download of ${preset} is already running`);
    this.name = 'DownloadBusyError';
  }
}

export class ModelDownloads {
  constructor(
    private readonly store: Store,
    private readonly modelsDir: string,
    private readonly log: Logger,
    /** The hub's address (default: $HF_ENDPOINT or huggingface.co). */
    private readonly endpoint?: string,
  ) {}

  private get stateKey(): string {
    return this.store.key('models', 'download');
  }

  private get lockKey(): string {
    return this.store.key('models', 'download-lock');
  }

  async state(): Promise<DownloadState | null> {
    const raw = await guard(() => this.store.redis.get(this.stateKey));
    return raw ? (JSON.parse(raw) as DownloadState) : null;
  }

  private async save(s: DownloadState, renewLock: boolean): Promise<void> {
    const m = this.store.redis.multi().set(this.stateKey, JSON.stringify(s));
    if (renewLock) m.pexpire(this.lockKey, LOCK_MS);
    await guard(() => m.exec());
  }

  /**
   * Starts downloading `presetName` in the background; `finished` is called with the outcome.
   * Throws DownloadBusyError while another download runs (in any process).
   */
  async start(presetName: string, actor: string, finished: (s: DownloadState) => void): Promise<DownloadState> {
    const preset = DOWNLOAD_PRESETS[presetName];
    if (!preset) throw new Error(`unknown preset ${presetName}`);
    const locked = await guard(() => this.store.redis.set(this.lockKey, presetName, 'PX', LOCK_MS, 'NX'));
    if (!locked) throw new DownloadBusyError((await this.state())?.preset ?? 'a model');
    const state: DownloadState = { preset: presetName, status: 'running', actor, startedAt: new Date().toISOString(), fileIndex: 0, files: preset.files.length };
    await this.save(state, true);
    const out = path.join(path.resolve(this.modelsDir), preset.dir);
    this.log.info({ preset: presetName, out, by: actor }, 'model download started');
    let last = 0;
    const progress = (p: ModelDownloadProgress) => {
      Object.assign(state, { file: p.file, fileIndex: p.fileIndex, files: p.files, received: p.received, total: p.total });
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      this.save(state, true).catch((err: Error) => this.log.warn({ err: err.message }, 'download progress not saved'));
    };
    void downloadModel(preset.repo, preset.files, out, { endpoint: this.endpoint, chatFormat: preset.chatFormat, onProgress: progress })
      .then(
        () => Object.assign(state, { status: 'done' as const, fileIndex: preset.files.length }),
        (err: Error) => Object.assign(state, { status: 'failed' as const, error: err.message }),
      )
      .then(async () => {
        state.finishedAt = new Date().toISOString();
        if (state.status === 'failed') this.log.error({ preset: presetName, err: state.error }, 'model download failed');
        else this.log.info({ preset: presetName, out }, 'model downloaded');
        await this.save(state, false).catch((err: Error) => this.log.warn({ err: err.message }, 'download state not saved'));
        await guard(() => this.store.redis.del(this.lockKey)).catch(() => undefined);
        finished(state);
      });
    return state;
  }
}
