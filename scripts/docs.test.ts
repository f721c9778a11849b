// The documents stay true to the code: README.md is short enough to read, and no document names
// an npm script, a relative file or an environment variable that does not exist.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDocument, docContext, formatProblems, listDocuments } from './doc-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README_MAX_LINES = 350;

test('README.md has at most 350 lines', () => {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines; move detail to docs/ (at most ${README_MAX_LINES})`);
});

test('every document names only npm scripts, files and variables that exist', () => {
  const ctx = docContext(ROOT);
  const docs = listDocuments(ROOT);
  assert.ok(docs.includes('README.md') && docs.includes(path.join('model', 'README.md')), `documents found: ${docs.join(', ')}`);
  const problems = docs.flatMap((f) => checkDocument(f, readFileSync(path.join(ROOT, f), 'utf8'), ctx));
  assert.equal(problems.length, 0, `\n${formatProblems(problems)}`);
});

test('the checker finds an unknown script, a dead link and an unknown variable, and accepts known ones', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nemo-docs-'));
  try {
    mkdirSync(path.join(dir, 'docs'));
    mkdirSync(path.join(dir, 'core'));
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ scripts: { start: 'x', 'bench:keys': 'y' } }));
    writeFileSync(path.join(dir, '.env.example'), 'PORT=3000\n# REDIS_URL=redis://x\n');
    writeFileSync(path.join(dir, 'core', 'config.ts'), "const s = z.object({\n  KEY_LENGTH: envInt(6),\n});\nconst MAX_TRIES = 3;\nprocess.env.LOG_FORMAT;\n");
    writeFileSync(path.join(dir, 'docs', 'ops.md'), '# Ops\n## Logs & `metrics`\n## Logs & `metrics`\n');
    const doc = [
      'Run `npm start`, `npm run bench:keys`, `npm run bench:*` and `npm run -s bench:http`.', // line 1: bench:http unknown
      'See [ops](docs/ops.md#logs--metrics-1), [gone](docs/gone.md), [site](https://example.org) and [x](docs/ops.md#nope).', // line 2
      'Set `REDIS_URL`, `KEY_LENGTH=8`, LOG_FORMAT, MAX_TRIES and `MODEL_THREADS=2`.', // line 3: MODEL_THREADS
      '```sh',
      'npm run keys -- show   # no such script',
      '```',
      'A link in code is not checked: `[x](nowhere.md)`.',
      'Back to [the top](#a-title) or [nowhere](#missing).',
      '# A title',
    ].join('\n');
    writeFileSync(path.join(dir, 'README.md'), doc);
    const ctx = docContext(dir);
    assert.deepEqual(listDocuments(dir), ['README.md', path.join('docs', 'ops.md')]);
    const found = checkDocument('README.md', doc, ctx).map((p) => `${p.line}: ${p.problem}`);
    assert.deepEqual(found, [
      '1: "npm run bench:http": package.json has no script "bench:http"',
      '5: "npm run keys": package.json has no script "keys"',
      '2: link to "docs/gone.md": no such file',
      '2: link to "docs/ops.md#nope": no heading with that anchor',
      '8: link to "#missing": no heading with that anchor',
      '3: "MODEL_THREADS": neither .env.example nor the code knows this variable',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
