// Bad input is the client's mistake: a 4xx with a clear message, a warning in the log without a
// stack (never an error), and nothing changed or audited.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { field, startHarness, type Client, type Harness } from './harness.js';

describe('bad input', () => {
  let h: Harness;
  let admin: Client;
  before(async () => {
    h = await startHarness();
    admin = await h.admin();
  });
  after(() => h.close());

  const post = async (path: string, body: Buffer | string, headers: Record<string, string>) => {
    const r = await fetch(h.url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return { status: r.status, body: (await r.json()) as { error: string; code: string } };
  };
  /** Log lines written while `fn` ran. */
  const logged = async (fn: () => Promise<void>): Promise<string[]> => {
    const from = h.logLines.length;
    await fn();
    return h.logLines.slice(from);
  };
  const assertWarnedWithoutStack = (lines: string[], what: RegExp) => {
    assert.ok(lines.some((l) => /"level":40/.test(l) && what.test(l)), `a warning about it: ${lines.join('')}`);
    assert.ok(!lines.some((l) => /"level":50/.test(l)), `no error: ${lines.join('')}`);
    assert.ok(!lines.some((l) => l.includes('"stack"')), 'no stack');
  };

  test('a body that does not match its Content-Encoding → 400, on the login and the key check alike', async () => {
    const json = { 'Content-Type': 'application/json' };
    const lines = await logged(async () => {
      for (const path of ['/api/admin/login', '/api/chat/verify']) {
        for (const encoding of ['gzip', 'deflate', 'br']) {
          const r = await post(path, Buffer.from('definitely not compressed'), { ...json, 'Content-Encoding': encoding });
          assert.equal(r.status, 400, `${path} ${encoding}`);
          assert.equal(r.body.code, 'bad_encoding');
          assert.match(r.body.error, new RegExp(`Content-Encoding: ${encoding}`));
        }
      }
    });
    assertWarnedWithoutStack(lines, /request body could not be decoded/);
    // Well-formed compressed bodies still work, and an unknown encoding is named.
    const ok = await post('/api/admin/login', gzipSync(JSON.stringify({ password: 'wrong-password' })), { ...json, 'Content-Encoding': 'gzip' });
    assert.equal(ok.status, 401);
    assert.equal((await post('/api/admin/login', brotliCompressSync('{"password":'), { ...json, 'Content-Encoding': 'br' })).body.code, 'invalid_json');
    const unknown = await post('/api/admin/login', '{}', { ...json, 'Content-Encoding': 'x-snappy' });
    assert.equal(unknown.status, 415);
    assert.match(unknown.body.error, /x-snappy/);
  });

  test('malformed percent-encoding in an id → 400 naming the problem', async () => {
    const lines = await logged(async () => {
      const r = await admin.post('/api/admin/users/%E0%A4%A/ban');
      assert.equal(r.status, 400);
      assert.equal(field(r, 'code'), 'bad_path');
      assert.match(field(r, 'error'), /percent-encoding/);
    });
    assertWarnedWithoutStack(lines, /bad_path|percent-encoding/);
  });

  test('audit?before= with an id Redis cannot read → 400', async () => {
    for (const before of ['99999999999999999999-0', '1-99999999999999999999', 'abc', '1-']) {
      const r = await admin.get(`/api/admin/audit?before=${before}`);
      assert.equal(r.status, 400, before);
      assert.match(field(r, 'error'), /before/);
    }
    assert.equal((await admin.get('/api/admin/audit?before=18446744073709551615-0')).status, 200, 'the largest id is fine');
  });

  test('a text/plain body on PUT /api/admin/settings → 415, nothing changed, nothing audited', async () => {
    const settingsBefore = await h.settings.get();
    const auditBefore = field<unknown[]>(await admin.get('/api/admin/audit?limit=500'), 'items').length;
    const r = await admin.put('/api/admin/settings', 'temperature=0.1', { 'Content-Type': 'text/plain' });
    assert.equal(r.status, 415);
    assert.equal(field(r, 'code'), 'unsupported_media_type');
    assert.match(field(r, 'error'), /application\/json/);
    assert.deepEqual((await h.settings.get()).values, settingsBefore.values);
    assert.equal(field<unknown[]>(await admin.get('/api/admin/audit?limit=500'), 'items').length, auditBefore, 'nothing audited');
    // The same change as JSON goes through.
    assert.equal((await admin.put('/api/admin/settings', { temperature: 0.5 })).status, 200);
    // Bodiless state-changing calls need no Content-Type.
    assert.equal((await fetch(`${h.url}/api/admin/keys/rotate`, { method: 'POST', headers: { Cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'X-CSRF-Token': admin.csrf } })).status, 200);
  });
});
