// `npm run bench:native` builds and runs: its quick mode over small shapes, alone and against this
// checkout's own git HEAD (the kernels in two namespaces of one program). Figures are not
// checked (no timed tests); the structure, the row counts and the same-bits report are.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const gpp = spawnSync('g++', ['--version']).status === 0;
const git = spawnSync('git', ['rev-parse', 'HEAD:model/native/src/matmul.cc'], { cwd: root }).status === 0;

function bench(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'model/bench/native.ts', ...args], { cwd: root, encoding: 'utf8' });
}

test('bench:native --help says what it measures', () => {
  const r = bench('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: npm run bench:native/);
  assert.match(r.stdout, /--against REV/);
});

test('bench:native rejects bad --weights and --rows, and a revision without the kernels', { skip: !git && 'not a git checkout' }, () => {
  const w = bench('--weights', 'disk');
  assert.equal(w.status, 2);
  assert.match(w.stderr, /--weights must be memory, cache or both/);
  const rows = bench('--rows', '1,x');
  assert.equal(rows.status, 2);
  assert.match(rows.stderr, /--rows must be row counts from 1 to 512/);
  const r = bench('--quick', '--against', 'no-such-revision-xyz');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no model\/native\/src\/matmul.cc at git revision "no-such-revision-xyz"/);
});

test('bench:native --quick runs alone and against HEAD', { skip: !gpp ? 'g++ is not installed' : !git && 'not a git checkout' }, () => {
  const alone = bench('--quick', '--json', '--rows', '1,3,8');
  assert.equal(alone.status, 0, alone.stderr);
  const a = JSON.parse(alone.stdout) as { results: Array<Record<string, unknown>> };
  assert.deepEqual(a.results.map((r) => r.rows), [1, 3, 8]);
  for (const r of a.results) assert.ok(Number(r.ms) > 0 && Number(r.GBs) > 0, JSON.stringify(r));

  const ab = bench('--quick', '--json', '--rows', '2,7', '--against', 'HEAD');
  assert.equal(ab.status, 0, ab.stderr);
  const b = JSON.parse(ab.stdout) as { against: string; results: Array<Record<string, unknown>> };
  assert.equal(b.against, 'HEAD');
  assert.deepEqual(b.results.map((r) => r.rows), [2, 7]);
  // The same kernels built twice give the same bits (when this checkout's are HEAD's, as in CI).
  const unchanged = spawnSync('git', ['diff', '--quiet', 'HEAD', '--', 'model/native/src'], { cwd: root }).status === 0;
  for (const r of b.results) {
    assert.ok(Number(r.baseMs) > 0 && Number(r.ratio) > 0, JSON.stringify(r));
    assert.equal(typeof r.identical, 'boolean');
    if (unchanged) assert.equal(r.identical, true, JSON.stringify(r));
  }
});
