// The keys CLI as an operator runs it: a separate process on the same Redis and prefix.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { AuditLog } from '../audit/audit-log.js';
import { KeyService, type RotationEvent } from '../keys/key-service.js';
import { openTestStore, TEST_REDIS_URL } from '../testing.js';
import { keyConfig, waitFor } from './keys-helpers.js';

const run = promisify(execFile);

/** Runs the CLI; `npx tsx` as an operator would, or node with the tsx loader (faster) for the rest. */
async function cli(args: string[], env: Record<string, string>, via: 'npx' | 'node' = 'node'): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, pre] = via === 'npx' ? ['npx', ['tsx']] : [process.execPath, ['--import', 'tsx']];
  try {
    const { stdout, stderr } = await run(cmd, [...pre, 'core/keys-cli.ts', ...args], {
      env: { ...process.env, REDIS_URL: TEST_REDIS_URL, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('keys show --json prints the current key, version and next rotation', async () => {
  const store = await openTestStore('cli');
  try {
    const service = new KeyService(store, keyConfig());
    const cur = await service.current();
    const out = await cli(['show', '--json'], { REDIS_PREFIX: store.prefix }, 'npx');
    assert.equal(out.code, 0, out.stderr);
    const shown = JSON.parse(out.stdout);
    assert.equal(shown.key, cur.key);
    assert.equal(shown.version, cur.version);
    assert.equal(shown.createdAt, cur.createdAt);
    assert.equal(shown.nextRotationAt, cur.nextRotationAt);
    assert.match(shown.key, /^\d{6}$/);
    assert.ok(!Number.isNaN(Date.parse(shown.nextRotationAt)));
  } finally {
    await store.cleanup();
  }
});

test('keys rotate is heard by a running server at once; history and schedule work from the CLI', async () => {
  const store = await openTestStore('cli');
  const server = new KeyService(store, keyConfig());
  try {
    await server.start();
    const seen: RotationEvent[] = [];
    server.onRotate((e) => seen.push(e));
    const before = await server.current();
    const out = await cli(['rotate', '--json', '--actor', 'ops'], { REDIS_PREFIX: store.prefix });
    assert.equal(out.code, 0, out.stderr);
    const rotated = JSON.parse(out.stdout);
    assert.equal(rotated.version, before.version + 1);
    assert.ok(await waitFor(() => seen.some((e) => e.version === rotated.version && e.by === 'cli'), 3000));
    assert.equal((await server.verify('u', rotated.key)).ok, true);

    const hist = await cli(['history', '--json'], { REDIS_PREFIX: store.prefix });
    const entries = JSON.parse(hist.stdout);
    assert.deepEqual(entries.map((e: { version: number; by: string; actor?: string }) => [e.version, e.by, e.actor]), [
      [2, 'cli', 'ops'],
      [1, 'init', undefined],
    ]);

    // As text: "created" and "retired" in one format, in the time zone named once.
    const text = await cli(['history'], { REDIS_PREFIX: store.prefix, KEY_ROTATE_TZ: 'Asia/Shanghai' });
    const stamp = '\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}';
    assert.match(text.stdout, /^Times in Asia\/Shanghai:\n/);
    assert.match(text.stdout, new RegExp(`^v2 .* created ${stamp} by cli \\(ops\\), current$`, 'm'));
    assert.match(text.stdout, new RegExp(`^v1 .* created ${stamp} by init, retired ${stamp}$`, 'm'));

    const bad = await cli(['schedule', 'set', '0 0 * *'], { REDIS_PREFIX: store.prefix });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /4 fields; expected 5/);
    const good = await cli(['schedule', 'set', '0 0 * * 1', '--tz', 'UTC', '--json'], { REDIS_PREFIX: store.prefix });
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).cron, '0 0 * * 1');
    assert.ok(await waitFor(async () => (await server.current()).nextRotationAt === JSON.parse(good.stdout).nextRuns[0], 3000));
    const shown = await cli(['schedule', '--json'], { REDIS_PREFIX: store.prefix });
    assert.deepEqual(JSON.parse(shown.stdout).tz, 'UTC');
  } finally {
    await server.stop();
    await store.cleanup();
  }
});

test('keys --help works on every command, and Redis being down gives one clear line', async () => {
  const helps = [['--help'], ['show', '--help'], ['rotate', '--help'], ['history', '--help'], ['schedule', 'set', '--help']];
  const [down, badEnv, ...outs] = await Promise.all([
    cli(['show'], { REDIS_URL: 'redis://127.0.0.1:1/0', REDIS_PREFIX: 'unused:' }),
    cli(['show'], { KEY_LENGTH: 'abc' }),
    ...helps.map((args) => cli(args, { REDIS_PREFIX: 'unused:' })),
  ]);
  outs.forEach((out, i) => {
    assert.equal(out.code, 0, `${helps[i].join(' ')}: ${out.stderr}`);
    assert.match(out.stdout, /Usage: keys/);
  });
  assert.equal(down.code, 3);
  assert.match(down.stderr, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0/);
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.stderr, /KEY_LENGTH/);
});

test('every change made with the CLI is in the audit log as cli@<host>; scheduled rotations as "schedule", once', async () => {
  const store = await openTestStore('cli-audit');
  const audit = new AuditLog(store);
  try {
    const env = { REDIS_PREFIX: store.prefix, USER: 'ops' };
    const service = new KeyService(store, keyConfig());
    await service.current();
    await service.verify('wx-locked', 'nope');
    for (const args of [['rotate'], ['schedule', 'set', '0 0 * * 1', '--tz', 'UTC'], ['schedule', 'set', '0 0 * *'], ['schedule', 'reset'], ['unlock', 'wx-locked']]) {
      await cli(args, env);
    }
    const actor = `cli@${hostname()}`;
    const entries = (await audit.list(20)).reverse();
    assert.deepEqual(entries.map((e) => [e.action, e.actor, e.ok]), [
      ['keys.rotate', actor, true],
      ['keys.schedule', actor, true],
      ['keys.schedule', actor, false],
      ['keys.schedule.reset', actor, true],
      ['users.unlock', actor, true],
    ]);
    assert.equal(entries[0].details.version, 2);
    assert.equal(entries[0].details.user, 'ops');
    assert.equal(entries[4].details.userId, 'wx-locked');
    assert.ok(!JSON.stringify(entries).includes((await service.current()).key), 'the key is not in the audit log');

    // Two processes race for the same scheduled slot: one rotates, one entry says so.
    const a = new KeyService(store, keyConfig(), undefined, { audit });
    const b = new KeyService(store, keyConfig(), undefined, { audit });
    const slot = new Date(Date.now() - 1000);
    const won = await Promise.all([a.rotation.runScheduledSlot(slot), b.rotation.runScheduledSlot(slot)]);
    assert.deepEqual(won.filter(Boolean).length, 1);
    const scheduled = (await audit.list(20)).filter((e) => e.actor === 'schedule');
    assert.equal(scheduled.length, 1);
    assert.equal(scheduled[0].action, 'keys.rotate');
    assert.equal(scheduled[0].details.version, (await service.current()).version);
  } finally {
    await store.cleanup();
  }
});

test('a closed pipe ends the command-line tools quietly (npm run keys -- schedule | head -2)', async () => {
  const store = await openTestStore('cli-pipe');
  try {
    for (const args of [['run', '--silent', 'keys', '--', 'schedule'], ['run', '--silent', 'model', '--', '--help']]) {
      const child = spawn('npm', args, { env: { ...process.env, REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: store.prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader goes away before the tool writes: its first write fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
      const code = await new Promise<number | null>((r) => child.once('close', r));
      assert.equal(stderr, '', `${args.join(' ')}: nothing on stderr`);
      assert.equal(code, 0, args.join(' '));
    }
  } finally {
    await store.cleanup();
  }
});
