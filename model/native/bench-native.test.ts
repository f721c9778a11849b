// `npm run bench:native` starts and says what it measures. One smoke check: benchmarks are run by
// hand (`npm run bench:native -- --quick`), not on every test run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function bench(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'model/bench/native.ts', ...args], { cwd: root, encoding: 'utf8' });
}

test('bench:native --help says what it measures', () => {
  const r = bench('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: npm run bench:native/);
  assert.match(r.stdout, /--against REV/);
});
