// The Models page's API on two "processes" sharing one Redis: the list (the shipped model and the
// folders under MODELS_DIR, described from their files), choosing one (audit-logged), and every
// process switching to it live through pub/sub — a web chat then answers from the new model in
// its own chat format.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../core/logger.js';
import { openTestStore } from '../../core/testing.js';
import { createTinyCdialModel, createTinyModel } from '../../model/test/tiny-model.js';
import { createGenerator, SwitchableGenerator } from '../../model/index.js';
import { ModelControl } from '../model-control.js';
import { field, startHarness, type Harness } from './harness.js';

const load = (dir: string) => createGenerator({ modelDir: dir, maxBatch: 2, maxQueue: 4, backend: 'cpu' });

interface ModelRow { name: string; dir: string; architecture?: string; parameters?: number; chatFormat?: string; sizeBytes: number; error?: string; active: boolean; serving: boolean }
interface ModelsView { models: ModelRow[]; chosen: { name: string; actor: string } | null; process: { serving: string; loading?: string; error?: { message: string } } | null }

let root: string;
let store: Awaited<ReturnType<typeof openTestStore>>;
const processes: Array<{ h: Harness; gen: SwitchableGenerator; control: ModelControl; unwatch: () => Promise<void> }> = [];

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nemo-models-'));
  const models = path.join(root, 'models');
  await createTinyModel(path.join(models, 'tiny'), { nPositions: 128, nLayer: 1 });
  await createTinyCdialModel(path.join(models, 'cdial-tiny'));
  await mkdir(path.join(models, 'empty'));
  store = await openTestStore('models');
  for (let i = 0; i < 2; i++) {
    const dir = path.join(models, 'tiny');
    const gen = new SwitchableGenerator(await load(dir));
    const control = new ModelControl({ generator: gen, serving: { name: 'tiny', dir }, modelsDir: models, load, log: silentLogger });
    const h = await startHarness({
      store, generator: gen, modelControl: control, env: { MODELS_DIR: models },
      bot: { BOT_MAX_NEW_TOKENS: 8, BOT_TEMPERATURE: 0, BOT_TOP_K: 0 },
    });
    processes.push({ h, gen, control, unwatch: await control.watch(h.activeModel) });
  }
});
after(async () => {
  for (const p of processes) {
    await p.unwatch();
    await p.h.close();
    await p.gen.close();
  }
  await store.cleanup();
  await rm(root, { recursive: true, force: true });
});

test('the list: shipped and each folder, with architecture, parameters, chat format and size; an unusable folder says why', async () => {
  const admin = await processes[0].h.admin();
  const r = await admin.get('/api/admin/models');
  assert.equal(r.status, 200);
  const v = r.body as ModelsView;
  assert.deepEqual(v.models.map((m) => m.name), ['shipped', 'cdial-tiny', 'empty', 'tiny']);
  const by = Object.fromEntries(v.models.map((m) => [m.name, m]));
  // The fixture's config.json (2 layers, 8 wide, 513 positions, 32 tokens): the embeddings, then per
  // layer two LayerNorms, attention (c_attn, c_proj) and the MLP (c_fc, c_proj), weights and biases.
  assert.equal(by['cdial-tiny'].parameters, 32 * 8 + 513 * 8 + 2 * (4 * 8 + 8 * 24 + 24 + 8 * 8 + 8 + 8 * 32 + 32 + 32 * 8 + 8));
  assert.equal(by['cdial-tiny'].chatFormat, 'cdial');
  assert.match(by['cdial-tiny'].architecture!, /2 layers, 8 wide, 2 heads, 513 positions, 32 tokens/);
  const size = (await stat(path.join(root, 'models/cdial-tiny/pytorch_model.bin'))).size;
  assert.ok(by['cdial-tiny'].sizeBytes > size);
  assert.equal(by.tiny.chatFormat, 'nemo-lines');
  assert.equal(by.shipped.chatFormat, 'nemo-lines');
  assert.match(by.empty.error!, /no checkpoint found/);
  assert.equal(v.chosen, null);
  assert.equal(by.tiny.active, true, 'nothing chosen: the served model is the active one');
  assert.equal(by.tiny.serving, true);
});

test('choosing a model switches every process live; the web chat answers in its format; audit-logged', async () => {
  const [a, b] = processes;
  const admin = await a.h.admin();
  const unknown = await admin.post('/api/admin/models/active', { name: '../tiny' });
  assert.equal(unknown.status, 404);
  assert.match(field(unknown, 'error'), /no model "\.\.\/tiny"/);
  const empty = await admin.post('/api/admin/models/active', { name: 'empty' });
  assert.equal(empty.status, 400);
  assert.match(field(empty, 'error'), /cannot be used: .*no checkpoint found/);

  const r = await admin.post('/api/admin/models/active', { name: 'cdial-tiny' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((r.body as ModelsView).chosen?.name, 'cdial-tiny');
  // Both processes load it (b hears of it only through Redis pub/sub).
  for (let i = 0; i < 300 && !(a.gen.info().chatFormat === 'cdial' && b.gen.info().chatFormat === 'cdial'); i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(b.gen.info().chatFormat, 'cdial');
  assert.equal(b.control.status().serving, 'cdial-tiny');
  const v = (await (await b.h.admin()).get('/api/admin/models')).body as ModelsView;
  assert.deepEqual(v.models.filter((m) => m.active).map((m) => m.name), ['cdial-tiny']);

  // A chat in process b now gets the cdial model's Chinese reply.
  const c = b.h.client({ 'X-Forwarded-For': '10.7.0.1' });
  c.csrf = field(await c.get('/api/chat/session'), 'csrfToken');
  assert.equal((await c.post('/api/chat/verify', { key: (await b.h.keys.current()).key })).status, 200);
  const chat = await c.post('/api/chat/messages', { text: '你好' });
  const done = chat.text.split('\n\n').filter((x) => x.startsWith('event: done')).map((x) => JSON.parse(x.split('\ndata:')[1]) as { kind: string; text: string })[0];
  assert.equal(done?.kind, 'reply', chat.text);
  assert.match(done.text, /\p{Script=Han}/u);

  const audit = (await admin.get('/api/admin/audit')).body as { items: Array<{ action: string; ok: boolean; details: Record<string, unknown> }> };
  const entries = audit.items.filter((e) => e.action === 'models.activate');
  assert.deepEqual(entries.map((e) => [e.details.name, e.ok]), [['cdial-tiny', true], ['empty', false], ['../tiny', false]]);
});
