// Runs every `*.test.ts` under the project's parts with node's test runner (tsx as loader).
// Usage: npm run test:unit [-- <path substrings to filter>]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOTS = ['core', 'model', 'bot', 'server', 'admin', 'scripts'];
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
if (process.argv.includes('--help')) {
  console.log('Usage: npm run test:unit [-- FILTER...]\nRuns every *.test.ts under core/ model/ bot/ server/ admin/ scripts/ whose path contains a FILTER.');
  process.exit(0);
}

function walk(dir: string, out: string[]): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
}

const files: string[] = [];
for (const r of ROOTS) walk(r, files);
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const res = spawnSync(
  process.execPath,
  // The preload keeps tfjs's "install the node backend" banner out of every test process.
  ['--import', 'tsx', '--import', './model/tfjs-quiet.ts', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(res.status ?? 1);
