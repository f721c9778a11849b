// /metrics stays bounded whatever paths clients send: the `route` label is the matched route
// pattern (mount path included), and every unmatched or unauthenticated path shares one bucket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Client, type Harness, inParallel, startHarness } from './harness.js';

/** The label sets of the HTTP duration histogram in a /metrics scrape. */
function httpSeries(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^nemo_http_request_duration_seconds_count\{(.*)\} /.exec(line);
    if (m) out.add(m[1]);
  }
  return out;
}

describe('HTTP metrics labels', () => {
  let h: Harness;
  let admin: Client;
  before(async () => {
    h = await startHarness();
    admin = await h.admin();
  });
  after(() => h.close());

  const kinds = (i: number, c: Client) => [
    c.get(`/no-such-page-${i}`),
    c.get(`/api/nothing-${i}`),
    c.post(`/api/admin/users/card-${i}/ban`),
    c.get(`/api/chat/x-${i}`),
    c.get(`/admin/missing-${i}.js`),
    admin.post(`/api/admin/users/web:${i}/unlock`),
    admin.post(`/api/admin/users/web:${i}/ban`, { reason: 5 }),
  ];

  test('1,000 distinct unknown paths and 1,000 ids on a parametrised route add no series', async () => {
    const anonymous = h.client();
    // One of each kind first, so every bucket they fall in exists.
    await Promise.all(kinds(0, anonymous));
    const scrape = async () => httpSeries((await h.client().get('/metrics')).text);
    await scrape();
    const base = await scrape();
    await inParallel(1000, 8, (i) => Promise.all(kinds(i + 1, anonymous)));
    const grown = await scrape();
    assert.deepEqual([...grown].filter((s) => !base.has(s)), [], 'no new series');
    const labels = [...grown].join('\n');
    assert.match(labels, /route="\/api\/admin\/users\/:id\/unlock",status="200"/, 'the pattern, with its mount path');
    assert.match(labels, /route="\/api\/admin\/users\/:id\/ban",status="400"/, 'an error inside a route keeps its pattern');
    assert.match(labels, /route="<unmatched>",status="401"/);
    assert.match(labels, /route="<unmatched>",status="404"/);
    assert.doesNotMatch(labels, /card-|nothing-|no-such|missing-|web:/, 'no raw path in a label');
  });
});
