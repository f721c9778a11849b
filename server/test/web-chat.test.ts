// The web chat against the real stack: bot ChatSession (key flow, lockout, limits, memory, usage)
// with channel 'web', a tiny real model behind the real generation service, replies over SSE.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConversationMemory } from '../../bot/conversation.js';
import { createForcedModel, singleTokenWord } from '../../model/test/forced-model.js';
import { Client, field, startHarness, type Harness } from './harness.js';
import { tinyGenerator } from './model-fixture.js';
import { createGenerator, FALLBACK_TEXT } from '../../model/index.js';

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((b) => b.includes('data:'))
    .map((b) => {
      const lines = b.split('\n');
      const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message';
      const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

async function visitor(h: Harness, ip: string): Promise<Client> {
  const c = h.client({ 'X-Forwarded-For': ip });
  const s = await c.get('/api/chat/session');
  assert.equal(s.status, 200);
  c.csrf = field(s, 'csrfToken');
  return c;
}

async function say(c: Client, text: string): Promise<{ status: number; events: SseEvent[]; body: unknown }> {
  const r = await c.post('/api/chat/messages', { text });
  if (!String(r.headers.get('content-type')).startsWith('text/event-stream')) return { status: r.status, events: [], body: r.body };
  return { status: r.status, events: parseSse(r.text), body: null };
}

const wrongKey = (key: string) => (key === '000000' ? '111111' : '000000');
const fullWidth = (s: string) => [...s].map((ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0)).join('');

describe('web chat', () => {
  let h: Harness;
  let model: Awaited<ReturnType<typeof tinyGenerator>>;
  before(async () => {
    // Wider and deeper than the default tiny model: the busy test needs a reply that is still being
    // generated when a second visitor asks, and with native kernels the default one finished a
    // 124-token reply in ~160 ms, sometimes before that request arrived.
    model = await tinyGenerator({ maxBatch: 1, maxQueue: 0, nPositions: 256, nLayer: 4, nEmbd: 256 });
    h = await startHarness({ generator: model.generator, bot: { BOT_MAX_NEW_TOKENS: 24, BOT_RATE_LIMIT: 100 } });
  });
  after(async () => {
    await h.close();
    await model.close();
  });

  test('a visitor gets an HttpOnly session; chatting needs the key; state-changing calls need the CSRF token', async () => {
    const c = await visitor(h, '10.1.0.1');
    const s = await c.get('/api/chat/session');
    assert.equal(field(s, 'authorised'), false);
    assert.match(String(field(s, 'userId')), /^web:[0-9a-f]{16}$/);
    assert.equal(field(s, 'available'), true);
    const r = await say(c, 'hello');
    assert.equal(r.status, 401);
    assert.equal((r.body as { code: string }).code, 'unauthorised');
    assert.equal((await c.post('/api/chat/verify', { key: (await h.keys.current()).key }, { 'X-CSRF-Token': '' })).status, 403);
    assert.equal((await c.post('/api/chat/messages', { text: 'hi' }, { 'X-CSRF-Token': 'nope' })).status, 403);
    assert.equal((await h.client().post('/api/chat/verify', { key: '123456' })).status, 401, 'no session at all');
  });

  test('wrong key → clear message with attempts left; non-keys cost nothing; lockout after the limit', async () => {
    const c = await visitor(h, '10.1.0.2');
    const key = (await h.keys.current()).key;
    const notKey = await c.post('/api/chat/verify', { key: 'hello there 😀' });
    assert.equal(notKey.status, 400);
    assert.equal(field(notKey, 'code'), 'not_a_key');
    const wrong = await c.post('/api/chat/verify', { key: wrongKey(key) });
    assert.equal(wrong.status, 401);
    assert.equal(field(wrong, 'code'), 'wrong_key');
    assert.equal(field(wrong, 'attemptsLeft'), h.coreConfig.KEY_MAX_ATTEMPTS - 1);
    assert.match(field(wrong, 'error'), /not right/);
    let last = wrong;
    for (let i = 1; i < h.coreConfig.KEY_MAX_ATTEMPTS; i++) last = await c.post('/api/chat/verify', { key: wrongKey(key) });
    assert.equal(last.status, 423);
    assert.equal(field(last, 'code'), 'locked');
    assert.ok(new Date(field<string>(last, 'lockedUntil')).getTime() > Date.now());
    // Even the right key is refused while locked out.
    const right = await c.post('/api/chat/verify', { key });
    assert.equal(right.status, 423);
    assert.match(field(right, 'error'), /Too many wrong keys/);
  });

  test('the right key (full-width digits too) verifies; the reply streams token by token; memory, usage and reset work', async () => {
    const c = await visitor(h, '10.1.0.3');
    const userId = field<string>(await c.get('/api/chat/session'), 'userId');
    // The greeting set on the Settings page reaches the chat (live, via pub/sub).
    await h.settings.update({ welcomeText: '欢迎来到 nemo · Welcome aboard' }, 'test');
    for (let i = 0; i < 50 && !(await h.settings.get()).overridden.includes('welcomeText'); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    const ok = await c.post('/api/chat/verify', { key: ` ${fullWidth((await h.keys.current()).key)}。` });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(field(ok, 'ok'), true);
    assert.match(field(ok, 'message'), /^欢迎来到 nemo · Welcome aboard\n/);
    await h.settings.reset('test');
    assert.equal(field(await c.get('/api/chat/session'), 'authorised'), true);

    const r = await say(c, 'hello there, how are you today? 你好 😀');
    assert.equal(r.status, 200);
    const names = r.events.map((e) => e.event);
    assert.equal(names[0], 'start');
    assert.equal(names[names.length - 1], 'done');
    // A 'retry' event voids what was streamed before it (a rejected try of the reply pipeline).
    const lastRetry = names.lastIndexOf('retry');
    const tokens = r.events.slice(lastRetry + 1).filter((e) => e.event === 'token').map((e) => String(e.data.t));
    assert.ok(r.events.filter((e) => e.event === 'token').length >= 2, 'streamed in pieces');
    const done = r.events[r.events.length - 1].data;
    assert.equal(done.kind, 'reply');
    assert.equal(done.text, tokens.join('').trim(), 'the final text is the streamed text of the accepted try');
    assert.ok(Number(done.tokens) > 0);

    const mem = new ConversationMemory(h.store, { maxTurns: 10, maxTokens: 10_000, idleMs: 60_000, countTokens: () => 1 });
    const modelTurn = done.outcome === 'ok' || done.outcome === 'resampled';
    assert.equal((await mem.history(userId)).length, modelTurn ? 1 : 0, 'a model reply is remembered, a fallback line is not');
    const user = (await h.usage.listUsers({ query: userId })).users[0];
    assert.equal(user.channel, 'web');
    assert.ok(user.messages >= 2, 'verification and the message were recorded');
    const reset = await c.post('/api/chat/reset');
    assert.equal(reset.status, 200);
    assert.deepEqual(await mem.history(userId), []);

    assert.equal((await say(c, '   ')).status, 400);
    assert.equal((await c.post('/api/chat/messages', { text: 'x'.repeat(9000) })).status, 400);
    assert.equal((await c.post('/api/chat/messages', { text: 'x'.repeat(20_000) })).status, 413);
  });

  test('limit reached and busy give clear notices; a second message while one streams is refused', async () => {
    const a = await visitor(h, '10.1.0.4');
    const b = await visitor(h, '10.1.0.5');
    const key = (await h.keys.current()).key;
    assert.equal((await a.post('/api/chat/verify', { key })).status, 200);
    assert.equal((await b.post('/api/chat/verify', { key })).status, 200);

    // Busy: the model decodes one chat at a time (maxBatch 1, no queue) and A's long reply holds it.
    await h.settings.update({ maxNewTokens: 220 }, 'test');
    for (let i = 0; i < 50 && h.botConfig.BOT_MAX_NEW_TOKENS !== 220; i++) await new Promise((r) => setTimeout(r, 20));
    const ac = new AbortController();
    const res = await fetch(`${a.base}/api/chat/messages`, {
      method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': a.csrf, Cookie: [...a.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      body: JSON.stringify({ text: 'tell me a long story about a cat' }),
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('event: token')) seen += new TextDecoder().decode((await reader.read()).value);
    const again = await say(a, 'are you there?');
    assert.equal(again.status, 409, 'one reply at a time per visitor');
    const busy = await say(b, 'hello?');
    const notice = busy.events.find((e) => e.event === 'notice');
    assert.ok(notice, JSON.stringify(busy));
    assert.equal(notice.data.code, 'busy');
    assert.match(String(notice.data.message), /busy/);

    // Leaving mid-reply cancels the generation.
    ac.abort();
    for (let i = 0; i < 100 && (h.inflight.size > 0 || model.generator.stats().active > 0); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.inflight.size, 0);
    assert.equal(model.generator.stats().active, 0, 'the model stopped decoding for the departed visitor');

    // Limit reached: a quota of one reply a day.
    await h.settings.update({ maxNewTokens: 8, dailyQuota: 1 }, 'test');
    for (let i = 0; i < 50 && h.botConfig.BOT_DAILY_QUOTA !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    const c = await visitor(h, '10.1.0.6');
    assert.equal((await c.post('/api/chat/verify', { key })).status, 200);
    assert.equal((await say(c, 'one')).events.at(-1)?.event, 'done');
    const limited = await say(c, 'two');
    const n = limited.events.find((e) => e.event === 'notice')!;
    assert.equal(n.data.code, 'quota_exceeded');
    assert.match(String(n.data.message), /quota/);
    await h.settings.reset('test');
  });

  test('guessing keys from many new sessions is stopped per IP', async () => {
    const key = (await h.keys.current()).key;
    let status = 0;
    for (let i = 0; i < 40 && status !== 429; i++) {
      const c = await visitor(h, '10.9.9.9');
      status = (await c.post('/api/chat/verify', { key: wrongKey(key) })).status;
    }
    assert.equal(status, 429);
  });
});

describe('web chat: blocked words never reach the browser', () => {
  let h: Harness;
  let dir: string;
  let generator: Awaited<ReturnType<typeof createGenerator>>;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-web-blocked-'));
    // A real checkpoint that says "the" and "cat" in about equal measure; the phrases "the cat" and
    // "cat the" are blocked, so a blocked phrase spans two streamed pieces.
    await createForcedModel(path.join(dir, 'model'), (t) => new Map([[singleTokenWord(t, ['the']).id, 1], [singleTokenWord(t, ['cat']).id, 1]]));
    await writeFile(path.join(dir, 'blocked.txt'), 'the cat\ncat the\n');
    generator = await createGenerator({ modelDir: path.join(dir, 'model'), maxBatch: 2, backend: 'cpu' });
    h = await startHarness({ generator, bot: { BOT_MAX_NEW_TOKENS: 16, BOT_TEMPERATURE: 1, BOT_BLOCKED_WORDS_FILE: path.join(dir, 'blocked.txt') } });
  });
  after(async () => {
    await h?.close();
    await generator?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('streamed pieces hold the tail back until checked; the reply is replaced and the stream voided', async () => {
    const c = await visitor(h, '10.9.0.1');
    assert.equal((await c.post('/api/chat/verify', { key: (await h.keys.current()).key })).status, 200);
    for (let i = 0; i < 3; i++) {
      const r = await say(c, 'tell me about your pets');
      assert.equal(r.status, 200);
      const streamed = r.events.filter((e) => e.event === 'token').map((e) => String(e.data.t)).join('');
      assert.ok(!/the\s+cat|cat\s+the/i.test(streamed), `the phrase was not streamed: ${JSON.stringify(streamed)}`);
      // Whatever a rejected try streamed is voided by a 'retry' before the fallback line.
      const fallbackAt = r.events.findIndex((e) => e.event === 'token' && e.data.t === FALLBACK_TEXT.en);
      assert.ok(fallbackAt > 0);
      const before = r.events.slice(0, fallbackAt);
      if (before.some((e) => e.event === 'token')) assert.equal(before.at(-1)!.event, 'retry');
      const done = r.events.at(-1)!;
      assert.equal(done.event, 'done');
      assert.equal(done.data.outcome, 'blocked');
      assert.equal(done.data.text, FALLBACK_TEXT.en);
    }
    assert.equal((await h.usage.series('24h')).totals.outcomes.blocked, 3);
  });
});
