// Downloading a preset from the Models page's API, against a local server laid out like the hub
// (serving the tiny PyTorch-written CDial fixture under the cdial-base preset's file names): the
// progress and outcome are kept in Redis, the new folder is listed with the cdial format and can
// be chosen; offline (nothing answers) the state carries the downloader's clear message. Both
// audit-logged.
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { field, startHarness, type Client, type Harness } from './harness.js';

const FIX = fileURLToPath(new URL('../../model/test/fixtures/torch/', import.meta.url));
const REPO = '/thu-coai/CDial-GPT_LCCC-base/resolve/main/';
const files: Record<string, Buffer> = {};
let hub: Server;
let hubUrl: string;
let root: string;
let h: Harness;
const savedEndpoint = process.env.HF_ENDPOINT;

interface View { models: Array<{ name: string; chatFormat?: string; error?: string }>; presets: Array<{ name: string; installed: boolean }>; download: { preset: string; status: string; error?: string; fileIndex?: number; files?: number } | null }

before(async () => {
  files['config.json'] = await readFile(path.join(FIX, 'config.json'));
  files['vocab.txt'] = await readFile(path.join(FIX, 'vocab.txt'));
  files['pytorch_model.bin'] = await readFile(path.join(FIX, 'gpt-f32-legacy.bin'));
  hub = createServer((req, res) => {
    const body = req.url?.startsWith(REPO) ? files[req.url.slice(REPO.length)] : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  root = await mkdtemp(path.join(os.tmpdir(), 'nemo-models-dl-'));
  h = await startHarness({ env: { MODELS_DIR: path.join(root, 'models') } });
});
after(async () => {
  if (savedEndpoint === undefined) delete process.env.HF_ENDPOINT;
  else process.env.HF_ENDPOINT = savedEndpoint;
  await h.close();
  await new Promise<void>((r) => hub.close(() => r()));
  await rm(root, { recursive: true, force: true });
});

async function finished(admin: Client): Promise<View> {
  for (let i = 0; i < 400; i++) {
    const v = (await admin.get('/api/admin/models')).body as View;
    if (v.download && v.download.status !== 'running') return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the download did not finish');
}

test('a preset downloads into MODELS_DIR, is listed with its chat format and can be chosen', async () => {
  process.env.HF_ENDPOINT = hubUrl;
  const admin = await h.admin();
  const before = (await admin.get('/api/admin/models')).body as View;
  assert.equal(before.presets.find((p) => p.name === 'cdial-base')?.installed, false);
  assert.equal((await admin.post('/api/admin/models/download', { preset: 'nope' })).status, 404);
  const r = await admin.post('/api/admin/models/download', { preset: 'cdial-base' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const v = await finished(admin);
  assert.equal(v.download?.status, 'done', JSON.stringify(v.download));
  assert.equal(v.download?.fileIndex, 3);
  assert.equal(v.presets.find((p) => p.name === 'cdial-base')?.installed, true);
  const row = v.models.find((m) => m.name === 'cdial-base');
  assert.equal(row?.chatFormat, 'cdial');
  assert.equal(row?.error, undefined);
  assert.deepEqual(JSON.parse(await readFile(path.join(root, 'models/cdial-base/chat_format.json'), 'utf8')), { format: 'cdial', version: 1 });
  assert.equal((await admin.post('/api/admin/models/active', { name: 'cdial-base' })).status, 202);
});

test('offline: the download fails with a message saying the hub cannot be reached', async () => {
  process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // the discard port: nothing answers
  const admin = await h.admin();
  assert.equal((await admin.post('/api/admin/models/download', { preset: 'cdial-large' })).status, 202);
  const v = await finished(admin);
  assert.equal(v.download?.status, 'failed');
  assert.match(v.download!.error!, /cannot reach 127\.0\.0\.1:9 .*needs internet access/);
  // The outcome is audit-logged right after the state is saved.
  let entries: unknown[][] = [];
  for (let i = 0; i < 100 && entries.length < 4; i++) {
    const audit = (await admin.get('/api/admin/audit')).body as { items: Array<{ action: string; ok: boolean; details: Record<string, unknown> }> };
    entries = audit.items.filter((e) => e.action === 'models.download').map((e) => [e.details.preset, e.details.status, e.ok]);
    if (entries.length < 4) await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(entries, [['cdial-large', 'failed', false], ['cdial-large', 'started', true], ['cdial-base', 'done', true], ['cdial-base', 'started', true]]);
  assert.match(field(await admin.post('/api/admin/models/download', {}), 'error'), /preset/);
});
