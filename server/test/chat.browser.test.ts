// The web chat in Chromium, phone-sized: wrong key → clear message, right key → chat, a reply
// streamed token by token from the tiny real model, reset. No CSP violations.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserSkipReason, launchBrowser } from './browser.js';
import { startHarness, type Harness } from './harness.js';
import { pacedGenerator, tinyGenerator } from './model-fixture.js';

const skip = browserSkipReason();
const shots = process.env.SCREENSHOT_DIR;
if (shots) mkdirSync(shots, { recursive: true });

describe('web chat in Chromium', { skip }, () => {
  let h: Harness;
  let model: Awaited<ReturnType<typeof tinyGenerator>>;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  // A streamed reply must end as a normal completion, not as a failed request (net::ERR_ABORTED).
  const failedRequests: string[] = [];

  before(async () => {
    model = await tinyGenerator({ nPositions: 256 });
    h = await startHarness({ generator: pacedGenerator(model.generator, 15), bot: { BOT_MAX_NEW_TOKENS: 60 } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|401)/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${new URL(r.url()).pathname}: ${r.failure()?.errorText}`));
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    await model?.close();
  });

  test('wrong key is explained; the right key opens the chat; the reply streams in token by token; reset', async () => {
    await page.goto(`${h.url}/chat`);
    await page.waitForSelector('#key-gate:not([hidden])');
    const key = (await h.keys.current()).key;
    await page.fill('#key-input', key === '000000' ? '111111' : '000000');
    await page.click('#key-form button');
    await page.waitForSelector('#key-error:not([hidden])');
    assert.match((await page.textContent('#key-error'))!, /not right.*4 attempts left/s);
    if (shots) await page.screenshot({ path: path.join(shots, 'chat-wrong-key-phone.png') });

    await page.fill('#key-input', key);
    await page.click('#key-form button');
    await page.waitForSelector('#chat-form:not([hidden])');

    // Record every text the bot bubble shows while the reply arrives.
    await page.evaluate(() => {
      const w = window as unknown as { seen: string[] };
      w.seen = [];
      new MutationObserver(() => {
        const b = document.querySelector('.msg.bot');
        if (b) w.seen.push(b.textContent ?? '');
      }).observe(document.getElementById('chat-log')!, { subtree: true, childList: true, characterData: true });
    });
    await page.fill('#chat-input', 'hello there, how are you today?');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.msg.user');
    await page.waitForFunction(() => document.querySelector('.msg.bot') && !document.querySelector('.msg.bot.streaming'), null, { timeout: 60_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const distinct = [...new Set(seen.filter(Boolean))];
    assert.ok(distinct.length >= 3, `the bubble grew in steps: ${JSON.stringify(distinct.slice(0, 5))}`);
    const finalText = (await page.textContent('.msg.bot'))!;
    // The request's end reaches the page just after the last event; give it that moment.
    await page.waitForLoadState('networkidle');
    assert.deepEqual(failedRequests, [], 'the streamed reply completed normally');
    assert.ok(finalText.length > 0);
    assert.equal((await page.textContent('.msg.user'))!, 'hello there, how are you today?');
    if (shots) await page.screenshot({ path: path.join(shots, 'chat-phone.png') });

    const userId = await page.evaluate(async () => ((await (await fetch('/api/chat/session')).json()) as { userId: string }).userId);
    const users = (await h.usage.listUsers({ query: userId })).users;
    assert.equal(users[0]?.channel, 'web');
    await page.click('#reset');
    await page.waitForFunction(() => /New conversation/.test(document.querySelector('.msg.system:last-child')?.textContent ?? ''));
    assert.equal(await page.$$eval('.msg.user', (m) => m.length), 0);

    await page.setViewportSize({ width: 1280, height: 800 });
    if (shots) await page.screenshot({ path: path.join(shots, 'chat-desktop.png') });
    assert.deepEqual(problems, []);
    assert.deepEqual(failedRequests, []);
  });
});
