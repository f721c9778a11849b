// Downloading a model from the Hugging Face hub: resumable (HTTP Range into `<file>.part`),
// checked (sha256 of LFS files from the hub's X-Linked-Etag header, or a pinned table), with
// progress callbacks. Offline, it fails with one clear message.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const OPENAI_GPT_REPO = 'openai-community/openai-gpt';
export const OPENAI_GPT_FILES = ['config.json', 'vocab.json', 'merges.txt', 'model.safetensors'];

export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface FileProgress {
  file: string;
  received: number;
  total: number | undefined;
}

export interface DownloadOptions {
  /** Known sha256 (hex) of the file; otherwise taken from the hub's headers when it gives one. */
  sha256?: string;
  onProgress?: (p: FileProgress) => void;
  /** Abort if no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

const exists = (p: string) => stat(p).then((s) => s, () => null);

function networkMessage(url: string, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return `cannot reach ${new URL(url).host} (${why}): downloading needs internet access. ` +
    'On an offline machine, copy the model\'s files (config.json, the weights and the tokenizer files: see docs/checkpoints.md) into the target folder by hand.';
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if ((err as Error).name === 'AbortError' || (err as Error).name === 'TimeoutError') throw new DownloadError(`${url}: timed out`);
    throw new DownloadError(networkMessage(url, err));
  }
}

/** What the hub says about a file before downloading it: LFS sha256 and size, when given. */
export async function probe(url: string): Promise<{ sha256?: string; size?: number }> {
  const res = await request(url, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(30_000) });
  if (res.status === 404) throw new DownloadError(`${url}: not found (404)`);
  if (res.status >= 400) throw new DownloadError(`${url}: HTTP ${res.status}`);
  const etag = (res.headers.get('x-linked-etag') ?? '').replace(/"/g, '').replace(/^W\//, '');
  const size = Number(res.headers.get('x-linked-size') ?? (res.status < 300 ? res.headers.get('content-length') : NaN));
  return { sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : undefined, size: Number.isFinite(size) ? size : undefined };
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * Downloads `url` to `dest`. A partial `dest.part` from an earlier run is resumed with a Range
 * request; a complete file is checked against the sha256 and moved into place. Returns whether
 * anything was downloaded (false when `dest` was already there and valid).
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<boolean> {
  const info = await probe(url);
  const sha256 = opts.sha256 ?? info.sha256;
  const done = await exists(dest);
  if (done && (!sha256 || (await sha256Of(dest)) === sha256) && (info.size === undefined || done.size === info.size)) return false;
  await mkdir(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let offset = (await exists(part))?.size ?? 0;
  if (info.size !== undefined && offset > info.size) {
    await unlink(part);
    offset = 0;
  }
  let hash = createHash('sha256');
  if (offset > 0) await pipeline(createReadStream(part), new Transform({ transform(c, _e, cb) { hash.update(c); cb(); } }));
  let digest: string | undefined;
  if (info.size !== undefined && offset === info.size) {
    digest = hash.digest('hex'); // the part is complete: only the check is left
  } else {
    const controller = new AbortController();
    const idleMs = opts.idleTimeoutMs ?? 60_000;
    let idle = setTimeout(() => controller.abort(), idleMs);
    try {
      const res = await request(url, { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {}, signal: controller.signal });
      if (res.status === 416) {
        await res.body?.cancel(); // nothing beyond what the part holds
        digest = hash.digest('hex');
      } else {
        if (!res.ok || !res.body) throw new DownloadError(`${url}: HTTP ${res.status}`);
        if (offset > 0 && res.status !== 206) {
          // The server ignored the Range request: start over.
          offset = 0;
          hash = createHash('sha256');
        }
        const total = info.size ?? (Number(res.headers.get('content-length')) + offset || undefined);
        let received = offset;
        // Chunks go to disk as they arrive (no stream buffering), so an interruption keeps
        // everything received for the resume.
        const fh = await open(part, offset > 0 ? 'a' : 'w');
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            clearTimeout(idle);
            idle = setTimeout(() => controller.abort(), idleMs);
            await fh.write(chunk);
            hash.update(chunk);
            received += chunk.length;
            opts.onProgress?.({ file: path.basename(dest), received, total });
          }
        } catch (err) {
          throw new DownloadError(`${url}: download interrupted after ${received} bytes (${(err as Error).message}); run again to resume`);
        } finally {
          await fh.close();
        }
        digest = hash.digest('hex');
      }
    } finally {
      clearTimeout(idle);
    }
  }
  const size = (await stat(part)).size;
  if (info.size !== undefined && size !== info.size) {
    throw new DownloadError(`${url}: got ${size} of ${info.size} bytes; run again to resume`);
  }
  if (sha256 && digest !== sha256) {
    await unlink(part);
    throw new DownloadError(`${dest}: sha256 mismatch (expected ${sha256}, got ${digest}); the partial file was removed, run again`);
  }
  await rename(part, dest);
  return true;
}

export function hubUrl(repo: string, file: string, endpoint = process.env.HF_ENDPOINT || DEFAULT_ENDPOINT, revision = 'main'): string {
  return `${endpoint.replace(/\/$/, '')}/${repo}/resolve/${revision}/${file}`;
}
