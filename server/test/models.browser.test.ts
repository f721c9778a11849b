// The Models page in Chromium: the shipped model and the folders under MODELS_DIR with their
// architecture, parameters, chat format and size; "Use this model" (confirmed) switches the
// process live, and the page shows the new active model; a download while offline says why it
// failed. No CSP violations or page errors.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { silentLogger } from '../../core/logger.js';
import { createTinyCdialModel, createTinyModel } from '../../model/test/tiny-model.js';
import { createGenerator, SwitchableGenerator } from '../../model/index.js';
import { ModelControl } from '../model-control.js';
import { browserSkipReason, launchBrowser } from './browser.js';
import { startHarness, TEST_PASSWORD, type Harness } from './harness.js';

const load = (dir: string) => createGenerator({ modelDir: dir, maxBatch: 2, backend: 'cpu' });

describe('Models page in Chromium', { skip: browserSkipReason() }, () => {
  let root: string;
  let h: Harness;
  let gen: SwitchableGenerator;
  let unwatch: () => Promise<void>;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'nemo-models-ui-'));
    const models = path.join(root, 'models');
    await createTinyModel(path.join(models, 'tiny'), { nPositions: 128, nLayer: 1 });
    await createTinyCdialModel(path.join(models, 'cdial-tiny'));
    gen = new SwitchableGenerator(await load(path.join(models, 'tiny')));
    const control = new ModelControl({ generator: gen, serving: { name: 'tiny', dir: path.join(models, 'tiny') }, modelsDir: models, load, log: silentLogger });
    h = await startHarness({ generator: gen, modelControl: control, env: { MODELS_DIR: models } });
    unwatch = await control.watch(h.activeModel);
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });
  after(async () => {
    await browser?.close();
    await unwatch?.();
    await h?.close();
    await gen?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('lists the models, switches to another on confirmation and shows it active', async () => {
    await page.goto(`${h.url}/admin/#/models`);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#models-body tr[data-model="cdial-tiny"]');
    const rows = await page.$$eval('#models-body tr', (trs) => trs.map((tr) => tr.getAttribute('data-model')));
    assert.deepEqual(rows, ['shipped', 'cdial-tiny', 'tiny']);
    const cdial = await page.textContent('#models-body tr[data-model="cdial-tiny"]');
    assert.match(cdial!, /2 layers, 8 wide, 2 heads, 513 positions, 32 tokens/);
    assert.match(cdial!, /cdial/);
    assert.match((await page.textContent('#models-body tr[data-model="tiny"]'))!, /active/);
    assert.match((await page.textContent('#models-status'))!, /This process serves tiny/);

    await page.click('#models-body button[data-model="cdial-tiny"]');
    await page.click('.dialog button.btn.primary');
    await page.waitForFunction(() => /This process serves cdial-tiny/.test(document.querySelector('#models-status')?.textContent ?? ''), null, { timeout: 30_000 });
    assert.match((await page.textContent('#models-body tr[data-model="cdial-tiny"]'))!, /active/);
    assert.equal(await page.$('#models-body button[data-model="cdial-tiny"]'), null, 'the active model has no button');
    assert.equal(gen.info().chatFormat, 'cdial');
    assert.deepEqual(problems, []);
  });

  test('downloading a preset while offline shows why it failed', async () => {
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // the discard port: nothing answers
    try {
      await page.selectOption('#download-preset', 'cdial-base');
      await page.click('#download-start');
      await page.waitForFunction(() => /failed/.test(document.querySelector('#download-status')?.textContent ?? ''), null, { timeout: 30_000 });
      if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'models.png'), fullPage: true });
      assert.match((await page.textContent('#download-status'))!, /Downloading cdial-base failed: cannot reach 127\.0\.0\.1:9 .*needs internet access/);
      assert.deepEqual(problems, []);
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });
});
