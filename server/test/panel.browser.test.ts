// The admin panel in a real browser (Debian's Chromium via playwright-core): log in, charts drawn
// with data, rotate the key and see the new one, change the schedule and see the next runs, a
// hostile display name shown as text, the key card, the phone layout. No CSP violations allowed.
// SCREENSHOT_DIR=/some/dir keeps screenshots of every page (desktop and phone).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { InstanceLease } from '../../bot/instance-lease.js';
import { setBotWaiting, setLoginState } from '../../bot/login-state.js';
import { browserSkipReason, launchBrowser } from './browser.js';
import { startHarness, TEST_PASSWORD, type Harness } from './harness.js';
import { HOSTILE_NAME, seedUsage } from './seed.js';
import { tinyGenerator } from './model-fixture.js';

const skip = browserSkipReason();
const shots = process.env.SCREENSHOT_DIR;
if (shots) mkdirSync(shots, { recursive: true });

async function shot(page: Page, name: string): Promise<void> {
  if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Number of painted pixels on a canvas (a drawn chart has many). */
function paintedPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
}

describe('admin panel in Chromium', { skip }, () => {
  let h: Harness;
  let model: Awaited<ReturnType<typeof tinyGenerator>>;
  let browser: Browser;
  let page: Page;
  let lease: InstanceLease;
  const problems: string[] = [];

  before(async () => {
    model = await tinyGenerator();
    h = await startHarness({ generator: model.generator });
    await seedUsage(h.usage, { days: 30, perDay: 30 });
    for (let i = 0; i < 3; i++) await h.keys.verify('wx-user-2', '000000' === (await h.keys.current()).key ? '111111' : '000000');
    // Bot "main" runs (holds its lease) and waits for a scan; "sales" ran once and is gone.
    lease = new InstanceLease(h.store, 'main');
    await lease.acquire();
    await setLoginState(h.store, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/test-qr' }, 'main');
    await setLoginState(h.store, { state: 'logged-in', user: { id: 'wx-sales', name: 'Sales desk' } }, 'sales');
    // A restarted "sales" process waits for its crashed predecessor's name.
    await setBotWaiting(h.store, 'sales', { host: 'bot-host', pid: 4343, since: new Date().toISOString() }, 600_000);
    browser = await launchBrowser();
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
    page = await ctx.newPage();
    page.on('console', (m) => {
      // Expected refusals (401 before login, 400 for a bad cron preview) are logged by the browser
      // as failed loads; everything else, CSP violations above all, is a problem.
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|401)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog opened: ${d.message()}`);
      void d.dismiss();
    });
  });
  after(async () => {
    await lease?.release();
    await browser?.close();
    await h?.close();
    await model?.close();
  });

  test('login: wrong password shows an error; the right one opens the dashboard with drawn charts and the QR code', async () => {
    await page.goto(`${h.url}/admin/`);
    await page.fill('#password', 'not the password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match((await page.textContent('#login-error'))!, /Wrong password/);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#page[data-loaded]');
    await page.waitForFunction(() => document.querySelectorAll('canvas').length >= 6);
    await page.waitForTimeout(400); // chart animation
    for (const id of ['chart-messages', 'chart-users', 'chart-tokens', 'chart-latency', 'chart-failed', 'chart-daily']) {
      assert.ok((await paintedPixels(page, `#${id}`)) > 500, `${id} has drawing`);
    }
    const kpis = await page.$$eval('.kpi .value', (els) => els.map((e) => e.textContent));
    assert.ok(Number(kpis[0]!.replace(/\D/g, '')) > 0, `messages KPI ${kpis[0]}`);
    assert.ok(await page.isVisible('.qr-box img'));
    const bots = await page.$$eval('.card', (els) => els.map((e) => e.textContent ?? '').filter((t) => t.includes('WeChat bot')));
    assert.equal(bots.length, 2, `one card per bot instance: ${bots.join(' | ')}`);
    assert.match(bots[0], /“main”.*waiting for scan/);
    assert.match(bots[1], /“sales”.*not running/);
    assert.match(bots[1], /Process 4343 on bot-host is waiting for the name to be released/);
    assert.equal(await page.$$eval('.qr-box img', (els) => els.length), 1, 'only the running bot offers a QR code');
    assert.ok(await page.$eval('.qr-box img', (i) => (i as HTMLImageElement).naturalWidth > 0), 'the QR code image loaded');
    await shot(page, 'dashboard-desktop');
    await page.click('.segmented button[data-range="30d"]');
    await page.waitForFunction(() => document.querySelector('#chart-messages')?.closest('.card')?.textContent?.includes('per day'));
    await shot(page, 'dashboard-30d-desktop');
  });

  test('keys: rotate with confirmation shows the new key; schedule change shows description and next runs; key card downloads', async () => {
    await page.click('a[data-page=keys]');
    await page.waitForFunction(() => /^\d{6}$/.test(document.querySelector('#key-value')?.textContent ?? ''));
    const before = (await page.textContent('#key-value'))!;
    assert.equal(before, (await h.keys.current()).key);
    assert.match((await page.textContent('#countdown'))!, /^\d{2}:\d{2}:\d{2}$|^\d+ d /);
    await shot(page, 'keys-desktop');

    await page.click('#rotate');
    await page.waitForSelector('.dialog');
    await page.click('.dialog .btn.danger');
    await page.waitForFunction((old) => document.querySelector('#key-value')?.textContent !== old, before);
    const after = (await page.textContent('#key-value'))!;
    assert.notEqual(after, before);
    assert.equal(after, (await h.keys.current()).key, 'the page shows the key the server now accepts');
    // The old key still works for the grace period, and the page says so with the end time.
    await page.waitForSelector('#previous-key:not([hidden])');
    const note = (await page.textContent('#previous-key'))!;
    assert.ok(note.includes(before), note);
    assert.match(note, /still accepted until .*\(\d+ min left, grace period\)/);
    assert.match((await page.textContent('table'))!, new RegExp(before));

    await page.fill('#cron', '0 9 * * 1');
    await page.fill('#tz', 'UTC');
    await page.waitForFunction(() => /Monday/.test(document.querySelector('#cron-desc')?.textContent ?? ''));
    await page.click('#save-schedule');
    await page.waitForFunction(() => /saved/.test(document.querySelector('#toast')?.textContent ?? ''));
    const runs = await page.$$eval('#next-runs li', (li) => li.map((l) => l.textContent ?? ''));
    assert.equal(runs.length, 5);
    const stored = await h.keys.getSchedule();
    assert.equal(stored.cron, '0 9 * * 1');
    for (const r of stored.nextRuns) assert.equal(new Date(r).getUTCDay(), 1);
    // A bad expression: a clear error, and the save button is disabled.
    await page.fill('#cron', '0 25 * * *');
    await page.waitForFunction(() => document.querySelector('#cron-desc')?.textContent === '' && /not a valid cron/.test(document.querySelector('#cron-error:not([hidden])')?.textContent ?? ''));
    assert.ok(await page.isDisabled('#save-schedule'));
    await page.click('.presets button[data-cron="0 0 * * *"]');
    await page.waitForFunction(() => !(document.querySelector('#save-schedule') as HTMLButtonElement).disabled);

    await page.fill('#caption', '关注公众号获取每日密钥 · Follow us for the daily key');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-card')]);
    assert.match(download.suggestedFilename(), /^nemo-key-v\d+\.png$/);
    const file = await download.path();
    const { readFile } = await import('node:fs/promises');
    const png = await readFile(file!);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
    assert.ok(png.length > 20_000);
    await shot(page, 'keys-after-desktop');
  });

  test('users: a hostile display name is shown as text; search and ban work', async () => {
    await page.click('a[data-page=users]');
    await page.waitForSelector('#users-body tr[data-user]');
    const names = await page.$$eval('#users-body .name', (els) => els.map((e) => e.textContent));
    assert.ok(names.includes(HOSTILE_NAME), 'the name appears literally');
    assert.equal(await page.$$eval('#users-body img', (i) => i.length), 0, 'no <img> was created from it');
    await shot(page, 'users-desktop');
    await page.fill('#user-search', '爱');
    await page.fill('#user-search', 'alice');
    await page.waitForFunction(() => document.querySelectorAll('#users-body tr[data-user]').length === 1);
    await page.click('#users-body tr[data-user] .btn.danger-outline');
    await page.click('.dialog .btn.danger');
    await page.waitForSelector('#users-body .badge.danger');
    assert.ok(await (await import('../../bot/bans.js')).Bans.prototype.isBanned.call({ store: h.store }, 'wx-user-1'));
  });

  test('settings and audit pages render; settings save', async () => {
    await page.click('a[data-page=settings]');
    await page.waitForSelector('#settings-form');
    await page.fill('#set-temperature', '0.5');
    await page.click('#save-settings');
    await page.waitForFunction(() => /saved/.test(document.querySelector('#toast')?.textContent ?? ''));
    assert.equal((await h.settings.get()).values.temperature, 0.5);
    const spec = (await page.textContent('#model-spec'))!;
    assert.match(spec, /2 layers · 32 wide · 4 heads/);
    assert.match(spec, /wasm|cpu|tensorflow/);
    await shot(page, 'settings-desktop');
    await page.click('a[data-page=audit]');
    await page.waitForSelector('td .badge');
    const actions = await page.$$eval('td .badge', (b) => b.map((x) => x.textContent));
    for (const a of ['login', 'keys.rotate', 'keys.schedule', 'users.ban', 'settings.update']) assert.ok(actions.includes(a), a);
    await shot(page, 'audit-desktop');
  });

  test('phone-sized screen (375 px): every nav link on screen, a compact header, no sideways scrolling, a readable audit log', async () => {
    await page.setViewportSize({ width: 375, height: 667 });
    const headers: number[] = [];
    for (const p of ['dashboard', 'keys', 'users', 'settings', 'audit']) {
      await page.goto(`${h.url}/admin/#/${p}`);
      await page.waitForSelector('#page[data-loaded], #page table');
      await page.waitForTimeout(p === 'dashboard' ? 700 : 300);
      const m = await page.evaluate(() => {
        // (No named helpers here: the test's compiler would wrap them in a function the page lacks.)
        return {
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          header: document.querySelector('.sidebar')!.getBoundingClientRect().height,
          links: Array.from(document.querySelectorAll('.nav a'), (a) => a.getBoundingClientRect()).map((b, i) => ({ text: document.querySelectorAll('.nav a')[i].textContent, left: b.left, right: b.right, visible: b.width > 0 })),
        };
      });
      assert.ok(m.overflow <= 1, `${p}: page is ${m.overflow}px wider than the screen`);
      for (const l of m.links) assert.ok(l.visible && l.left >= 0 && l.right <= 375, `${p}: nav link ${l.text} is off-screen (${l.left}–${l.right})`);
      // Brand and sign-out on one row, the tabs on at most two: about 115 px on every page, long or short.
      assert.ok(m.header <= 120, `${p}: the header is ${m.header}px tall`);
      headers.push(m.header);
      await shot(page, `${p}-phone`);
    }
    assert.equal(new Set(headers).size, 1, `the header does not stretch with the page: ${headers.join(', ')}`);
    // The audit log as cards: who, from where and the details all on screen, nothing cut.
    const cells = await page.$$eval('#audit-table tbody td', (tds) => tds.map((td) => {
      const b = td.getBoundingClientRect();
      return { label: td.getAttribute('data-label'), text: td.textContent, left: b.left, right: b.right, shown: b.width > 0, cut: td.scrollWidth > td.clientWidth + 1 };
    }));
    assert.ok(cells.length > 0);
    for (const c of cells.filter((x) => x.text)) {
      assert.ok(c.shown && c.left >= 0 && c.right <= 375 && !c.cut, `audit ${c.label} "${c.text}" is off-screen or cut`);
    }
    assert.ok(cells.some((c) => c.label === 'From' && c.shown && c.text), 'the address is shown on a phone');
    assert.ok(cells.some((c) => c.label === 'Who' && c.text === 'admin'), 'the actor, not a session id');
    assert.ok(!cells.some((c) => c.label === 'Who' && /^admin:/.test(c.text ?? '')));
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  test('dashboard: a bot that cannot reach WeChat says so, with the next try, the last error and since when', async () => {
    const failingSince = new Date(Date.now() - 300_000).toISOString();
    await setLoginState(h.store, {
      state: 'logged-out', detail: 'cannot reach WeChat', since: failingSince,
      unreachable: { attempt: 6, lastError: 'getaddrinfo ENOTFOUND login.wx.qq.com', nextTryAt: new Date(Date.now() + 40_000).toISOString() },
    }, 'main');
    try {
      await page.goto(`${h.url}/admin/#/dashboard`);
      await page.waitForFunction(() => document.body.textContent?.includes('Cannot reach WeChat — next try in'));
      const main = (await page.$$eval('.card', (els) => els.map((e) => e.textContent ?? '').find((t) => t.includes('“main”'))))!;
      assert.match(main, /cannot reach WeChat.*failing since/);
      assert.match(main, /next try in (3\d|40) s/);
      assert.match(main, /6 failed tries so far/);
      assert.match(main, /Last error: getaddrinfo ENOTFOUND login\.wx\.qq\.com/);
      assert.doesNotMatch(main, /the bot is starting/);
    } finally {
      await setLoginState(h.store, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/test-qr' }, 'main');
    }
  });

  test('no CSP violations or script errors happened', () => {
    assert.deepEqual(problems, []);
  });
});
