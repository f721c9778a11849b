// `model:download --preset`: against a local server laid out like the hub, the cdial-large preset
// fetches the files CDial-GPT needs (resuming a partial one, sha256-checked), declares the cdial
// chat format, and the folder loads and computes PyTorch's logits.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import { logits } from '../nn/gpt.js';
import { maxAbsDiff } from './reference.js';

const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const REPO = '/thu-coai/CDial-GPT_LCCC-large/resolve/main/';
const files: Record<string, Buffer> = {};
const ranges: string[] = [];
let server: Server;
let endpoint: string;
let dir: string;
const cli = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', ...args], { timeout: 120_000 });

before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-preset-'));
  files['config.json'] = await readFile(path.join(FIX, 'config.json'));
  files['vocab.txt'] = await readFile(path.join(FIX, 'vocab.txt'));
  files['pytorch_model.bin'] = await readFile(path.join(FIX, 'gpt-f32-legacy.bin'));
  server = createServer((req, res) => {
    const name = req.url?.startsWith(REPO) ? req.url.slice(REPO.length) : '';
    const body = files[name];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'HEAD') {
      // Like the hub: LFS files answer with a redirect carrying their sha256 and size.
      const lfs = name.endsWith('.bin');
      res.writeHead(lfs ? 302 : 200, lfs
        ? { location: REPO + name, 'x-linked-etag': `"${createHash('sha256').update(body).digest('hex')}"`, 'x-linked-size': String(body.length) }
        : { 'content-length': String(body.length) }).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) ranges.push(`${name}:${range[1]}`);
    const from = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, { 'content-length': String(body.length - from) });
    res.end(body.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

test('--preset cdial-large downloads, resumes, declares the cdial format and loads', async () => {
  const out = path.join(dir, 'cdial-large');
  await mkdir(out);
  // An earlier run stopped halfway through the weights.
  const half = files['pytorch_model.bin'].length >> 1;
  await writeFile(path.join(out, 'pytorch_model.bin.part'), files['pytorch_model.bin'].subarray(0, half));
  const { stderr } = await cli('download', '--preset', 'cdial-large', '--endpoint', endpoint, '--out', out);
  assert.match(stderr, /pytorch_model\.bin: downloaded/);
  assert.deepEqual(ranges, [`pytorch_model.bin:${half}`]);
  assert.deepEqual(JSON.parse(await readFile(path.join(out, 'chat_format.json'), 'utf8')), { format: 'cdial', version: 1 });
  const ref = JSON.parse(await readFile(path.join(FIX, 'logits.json'), 'utf8')) as { ids: number[]; variants: Record<string, { plain: number[][] }> };
  const { params } = await loadCheckpoint(out);
  const got = tf.tidy(() => logits(params, [ref.ids])).dataSync();
  assert.ok(maxAbsDiff(got, ref.variants['f32-legacy'].plain.flat()) < 1e-4);
  // A second run finds everything in place.
  const again = await cli('download', '--preset', 'cdial-large', '--endpoint', endpoint, '--out', out);
  assert.match(again.stderr, /pytorch_model\.bin: already present and valid/);
  await assert.rejects(cli('download', '--preset', 'cdial-huge'), /unknown preset "cdial-huge" \(cdial-large, cdial-base, openai-gpt\)/);
});
