// The panel's first run in Chromium: a visit before sign-in logs nothing to the console; the
// one-time password from the log opens only the "choose your own password" form; after that, the
// dashboard.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserSkipReason, launchBrowser } from './browser.js';
import { startHarness, type Harness } from './harness.js';

const skip = browserSkipReason();

describe('admin panel first run in Chromium', { skip }, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  before(async () => {
    h = await startHarness({ password: false });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  test('a visit before sign-in shows the sign-in form and logs no error', async () => {
    for (let visit = 0; visit < 2; visit++) {
      await page.goto(`${h.url}/admin/`);
      await page.waitForSelector('#login-form:not([hidden])');
      await page.waitForLoadState('networkidle');
    }
    assert.deepEqual(consoleErrors, []);
  });

  test('the one-time password leads to "choose your own", then to the dashboard', async () => {
    // The first sign-in attempt makes the password (npm start makes it at start-up).
    await page.fill('#password', 'a wrong guess');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not([hidden])');
    const password = /generated the admin password (\S+) /.exec(h.logLines.join(''))![1];
    await page.fill('#password', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#new-password-form:not([hidden])');
    assert.ok(await page.isHidden('#shell'), 'nothing of the panel before the new password');
    // A reload keeps asking.
    await page.reload();
    await page.waitForSelector('#new-password-form:not([hidden])');
    await page.fill('#new-password', 'my own admin password');
    await page.fill('#new-password-again', 'my own admin passwort');
    await page.click('#new-password-form button[type=submit]');
    await page.waitForFunction(() => /differ/.test(document.querySelector('#new-password-error')?.textContent ?? ''));
    await page.fill('#new-password-again', 'my own admin password');
    await page.click('#new-password-form button[type=submit]');
    await page.waitForSelector('#page[data-loaded]');
    assert.ok(await page.isHidden('#login-view'));
    const api = h.client();
    assert.equal((await api.post('/api/admin/login', { password: 'my own admin password' })).status, 200);
  });

  test('Settings changes the password later: the current one is asked for', async () => {
    await page.goto(`${h.url}/admin/#/settings`);
    await page.waitForSelector('#change-password-form');
    await page.fill('#current-password', 'not my password');
    await page.fill('#changed-password', 'a newer admin password');
    await page.fill('#changed-password-again', 'a newer admin password');
    await page.click('#change-password');
    await page.waitForFunction(() => /current password is wrong/.test(document.querySelector('#change-password-error')?.textContent ?? ''));
    await page.fill('#current-password', 'my own admin password');
    await page.click('#change-password');
    await page.waitForFunction(() => (document.querySelector('#current-password') as HTMLInputElement | null)?.value === '');
    const api = h.client();
    assert.equal((await api.post('/api/admin/login', { password: 'my own admin password' })).status, 401);
    assert.equal((await api.post('/api/admin/login', { password: 'a newer admin password' })).status, 200);
    // The panel stays signed in on the new session.
    const before = consoleErrors.length;
    await page.reload();
    await page.waitForSelector('#change-password-form');
    assert.ok(await page.isHidden('#login-view'), 'still signed in after the change');
    assert.equal(consoleErrors.length, before);
  });
});
