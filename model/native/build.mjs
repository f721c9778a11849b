// Builds the optional native matmul addon (model/native/build/Release/nemo_native.node) with
// node-gyp: `npm run build:native` (fails loudly) and the root package's postinstall
// (`--optional`: a machine without a compiler gets a warning and keeps the wasm kernels).
// Flags: -O3 -march=native first (the addon is built where it runs), then generic flags.
// NEMO_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const optional = process.argv.includes('--optional');
const say = (msg) => console.error(`native matmul: ${msg}`);

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package
  }
  return candidates.find((c) => c && existsSync(c));
}

function build(cflags) {
  const gyp = nodeGyp();
  if (!gyp) return { ok: false, why: 'node-gyp not found (it ships with npm)' };
  const args = [gyp, 'rebuild'];
  // Offline builds need local Node headers: npm config nodedir (e.g. /usr), else /usr when it has them.
  const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  const r = spawnSync(process.execPath, args, {
    cwd: here,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, NEMO_NATIVE_CFLAGS: cflags },
  });
  if (r.status === 0) return { ok: true };
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-12).join('\n');
  return { ok: false, why: r.error ? r.error.message : tail };
}

function check() {
  const file = path.join(here, 'build', 'Release', 'nemo_native.node');
  const addon = createRequire(import.meta.url)(file);
  const a = new Float32Array([1, 2, 3, 4]);
  const out = new Float32Array(4);
  addon.matmul(a, a, out, null, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0);
  if (out.join() !== '7,10,15,22') throw new Error(`self-check failed: ${out.join()}`);
  return addon.info();
}

if (process.env.NEMO_NATIVE === '0') {
  say('skipped (NEMO_NATIVE=0)');
  process.exit(0);
}
let result = build('-march=native');
if (!result.ok) {
  say('build with -march=native failed; retrying with generic flags');
  result = build('');
}
if (result.ok) {
  try {
    const info = check();
    say(`built (${info.isa}); ${path.join('model', 'native', 'build', 'Release', 'nemo_native.node')}`);
    process.exit(0);
  } catch (err) {
    result = { ok: false, why: err.message };
  }
}
say(`NOT built — the model will use the wasm kernels only.\n${result.why}`);
if (optional) {
  say('warning: continuing without it (needs python3, make and a C++ compiler; then `npm run build:native`)');
  process.exit(0);
}
process.exit(1);
