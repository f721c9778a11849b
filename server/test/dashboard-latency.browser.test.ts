// The dashboard's latency chart draws the latency of a single busy hour: a first day's usage (a
// few messages in one hour, empty hours around it) must show on the chart, not only on the tile.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserSkipReason, launchBrowser } from './browser.js';
import { startHarness, TEST_PASSWORD, type Harness } from './harness.js';

const skip = browserSkipReason();
const P50_COLOUR = [0x7a, 0x5a, 0xf8];

/** Pixels inside a chart's plot area (not its legend) painted in `rgb`. */
function plotPixelsOf(page: Page, id: string, rgb: number[]): Promise<number> {
  return page.evaluate(([id, rgb]) => {
    const canvas = document.getElementById(id as string) as HTMLCanvasElement;
    const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { chartArea: { left: number; top: number; right: number; bottom: number }; currentDevicePixelRatio: number } } }).Chart.getChart(canvas);
    const { left, top, right, bottom } = chart.chartArea;
    const r = chart.currentDevicePixelRatio;
    const img = canvas.getContext('2d')!.getImageData(left * r, top * r, (right - left) * r, (bottom - top) * r).data;
    const [R, G, B] = rgb as number[];
    let n = 0;
    for (let i = 0; i < img.length; i += 4) if (Math.abs(img[i] - R) < 16 && Math.abs(img[i + 1] - G) < 16 && Math.abs(img[i + 2] - B) < 16 && img[i + 3] > 200) n++;
    return n;
  }, [id, rgb] as const);
}

describe('dashboard latency chart in Chromium', { skip }, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;

  before(async () => {
    h = await startHarness();
    // Three messages two hours ago; nothing before or since.
    const at = new Date(Date.now() - 2 * 3_600_000);
    for (const latencyMs of [63, 120, 387]) {
      await h.usage.record({ userId: 'wx-first', channel: 'wechat', tokensIn: 20, tokensOut: 10, latencyMs, outcome: 'ok', at });
    }
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  test('one hour with messages is drawn on the latency chart', async () => {
    const api = await h.admin();
    const usage = (await api.get('/api/admin/usage?range=24h')).body as { buckets: { latencyP50: number | null }[]; totals: { latencyP50: number } };
    assert.ok(usage.totals.latencyP50 > 0, 'the tile has a value');
    assert.equal(usage.buckets.filter((b) => b.latencyP50 !== null).length, 1, 'one bucket has a latency');

    await page.goto(`${h.url}/admin/`);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#page[data-loaded]');
    await page.waitForTimeout(600); // chart animation
    const drawn = await plotPixelsOf(page, 'chart-latency', P50_COLOUR);
    assert.ok(drawn >= 10, `the p50 value is drawn in the plot area (${drawn} pixels)`);
  });
});
