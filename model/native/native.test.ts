// The native matmul addon (model/native) under tfjs's wasm backend: against a float64 reference
// and the original wasm kernels for many shapes, transposes, batch broadcasting, bias and relu;
// identical results for 1 and 2 threads and packed or not; a gradient check through the override;
// the fallback for what it does not handle; the engine's decode reaching it; NEMO_NATIVE=0.
// Skips (saying so) when the addon is not built; .ci/run makes sure it is built in CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { Engine } from '../inference/engine.js';
import { Rng } from '../rng.js';
import { makeConfig } from '../nn/config.js';
import { disposeParams, initParams } from '../nn/params.js';
import { ADDON_PATH, loadNative, nativeStatus } from './index.js';
import { nativeCounts, nativeMatMulActive, setNativeThreads, withoutNative } from './kernels.js';
import { refMatMul } from '../test/reference.js';

const backend = await initBackend('wasm');
const built = existsSync(ADDON_PATH);
const skip = !built
  ? `native matmul addon not built (${ADDON_PATH} missing; run \`npm run build:native\`)`
  : process.env.NEMO_NATIVE === '0' ? 'NEMO_NATIVE=0: native matmul disabled' : false;

function rand(n: number, seed: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 1);
}

/** Largest |a - b| over sqrt(K): float32 rounding of a K-term dot product of unit normals is ~1e-7 · K there. */
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>, K: number): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.sqrt(Math.max(1, K));
}

interface Case { as: number[]; bs: number[]; ta?: boolean; tb?: boolean }

const shapes = (M: number, K: number, N: number, ta = false, tb = false, batchA?: number, batchB?: number): Case => ({
  as: [...(batchA ? [batchA] : []), ...(ta ? [K, M] : [M, K])],
  bs: [...(batchB ? [batchB] : []), ...(tb ? [N, K] : [K, N])],
  ta,
  tb,
});

const CASES: Case[] = [];
for (const M of [1, 2, 3, 4, 7, 8, 64, 129]) {
  for (const [K, N] of [[1, 5], [5, 17], [17, 1], [768, 17], [17, 3072], [64, 300]]) CASES.push(shapes(M, K, N));
}
for (const [ta, tb] of [[true, false], [false, true], [true, true]]) {
  for (const M of [1, 5, 8, 9, 129]) CASES.push(shapes(M, 77, 300, ta, tb));
}
CASES.push(shapes(1, 768, 40478), shapes(2, 33, 40478, false, true), shapes(3, 3072, 768));
// batch: equal, B broadcast, A broadcast; 4-D like attention's [B, H, T, D]
CASES.push(shapes(5, 17, 9, false, false, 3, 3), shapes(130, 17, 9, false, true, 3, 3), shapes(7, 33, 20, true, false, 4, undefined));
CASES.push(shapes(2, 33, 20, false, false, undefined, 4), shapes(129, 16, 70, false, false, undefined, 2));
CASES.push({ as: [2, 3, 10, 8], bs: [2, 3, 10, 8], ta: false, tb: true }, { as: [1, 1, 9, 8], bs: [2, 3, 8, 5] });

test(`the addon loads and the wasm matmul kernels are overridden (${backend})`, { skip }, () => {
  const s = nativeStatus();
  assert.ok(s.active, s.reason);
  assert.ok(nativeMatMulActive());
  assert.ok((s.threads ?? 0) >= 1);
});

test("the machine probe measures the pool's FMA rate and a memory read rate, and rejects bad sizes", { skip }, () => {
  const addon = loadNative()!;
  const p = addon.probe(16 * 2 ** 20);
  // Bounds any machine that runs this meets (one scalar core does more than 1 GFLOP/s and reads
  // more than 0.5 GB/s), and none reaches the upper ones.
  assert.ok(Number.isFinite(p.fmaGflops) && p.fmaGflops > 1 && p.fmaGflops < 1e5, `fmaGflops ${p.fmaGflops}`);
  assert.ok(Number.isFinite(p.readGBs) && p.readGBs > 0.5 && p.readGBs < 1e4, `readGBs ${p.readGBs}`);
  for (const bad of [0, 1000, -1, 2 ** 40]) assert.throws(() => addon.probe(bad), /probe: expected a read size of 1 MB to 16 GB/);
  assert.throws(() => (addon.probe as (x: unknown) => unknown)('16'), /probe: expected/);
});

test('native matmul equals a float64 reference and the original wasm kernel', { skip }, () => {
  CASES.forEach((c, i) => {
    const a = rand(c.as.reduce((x, y) => x * y, 1), 10 + i);
    const b = rand(c.bs.reduce((x, y) => x * y, 1), 1000 + i);
    const K = c.ta ? c.as[c.as.length - 2] : c.as[c.as.length - 1];
    const want = refMatMul(a, c.as, b, c.bs, !!c.ta, !!c.tb);
    const before = nativeCounts().native;
    const [got, orig] = tf.tidy(() => {
      const ta = tf.tensor(a, c.as);
      const tb = tf.tensor(b, c.bs);
      return [tf.matMul(ta, tb, c.ta, c.tb), withoutNative(() => tf.matMul(ta, tb, c.ta, c.tb))];
    });
    assert.equal(nativeCounts().native, before + 1, `case ${JSON.stringify(c)} did not run natively`);
    assert.deepEqual(got.shape, orig.shape);
    const g = got.dataSync();
    assert.ok(maxErr(g, want, K) < 1e-5, `case ${JSON.stringify(c)}: vs float64 ${maxErr(g, want, K)}`);
    assert.ok(maxErr(g, orig.dataSync(), K) < 1e-5, `case ${JSON.stringify(c)}: vs wasm ${maxErr(g, orig.dataSync(), K)}`);
    tf.dispose([got, orig]);
  });
});

test('fused matmul: bias and relu (and linear) natively, same as the wasm kernel', { skip }, () => {
  for (const [M, K, N, ta, tb] of [[1, 768, 2304, false, false], [8, 77, 300, false, false], [129, 64, 70, false, false], [5, 33, 17, true, true], [130, 9, 40, true, false]] as const) {
    for (const activation of ['linear', 'relu'] as const) {
      const c = shapes(M, K, N, ta, tb);
      const a = rand(M * K, M + K);
      const b = rand(K * N, N);
      const bias = rand(N, 7);
      const want = refMatMul(a, c.as, b, c.bs, ta, tb, bias, activation === 'relu');
      const before = nativeCounts().native;
      const [got, orig] = tf.tidy(() => {
        const args = { a: tf.tensor2d(a, c.as as [number, number]), b: tf.tensor2d(b, c.bs as [number, number]), bias: tf.tensor1d(bias), transposeA: ta, transposeB: tb, activation };
        return [tf.fused.matMul(args), withoutNative(() => tf.fused.matMul(args))];
      });
      assert.equal(nativeCounts().native, before + 1);
      assert.ok(maxErr(got.dataSync(), want, K) < 1e-5, `${M}x${K}x${N} ${activation}: ${maxErr(got.dataSync(), want, K)}`);
      // (tfjs-wasm 4.22's fused kernel mis-adds the bias when an operand is transposed: compare
      // with it only without transposes; the float64 reference above covers every case.)
      if (!ta && !tb) assert.ok(maxErr(got.dataSync(), orig.dataSync(), K) < 1e-5, `${M}x${K}x${N} ${activation} vs wasm`);
      if (activation === 'relu') assert.ok(got.dataSync().every((v) => v >= 0));
      tf.dispose([got, orig]);
    }
  }
});

test('results are bit-identical for 1 and 2 threads, and with a packed B', { skip }, () => {
  const threads = nativeStatus().threads ?? 1;
  try {
    for (const [M, K, N] of [[1, 768, 3072], [3, 768, 40478], [4, 96, 1001], [7, 64, 333], [8, 300, 700], [129, 768, 300], [256, 64, 1000]]) {
      const a = tf.tensor2d(rand(M * K, 1), [M, K]);
      const w = tf.tensor2d(rand(K * N, 2), [K, N]);
      const runs: Float32Array[] = [];
      for (const n of [1, 2, 1, 2]) {
        setNativeThreads(n);
        // The second use of `w` packs it (any M): runs 2-4 read the packed copy.
        const y = tf.matMul(a, w);
        runs.push(y.dataSync() as Float32Array);
        y.dispose();
      }
      for (const r of runs.slice(1)) assert.ok(Buffer.from(r.buffer).equals(Buffer.from(runs[0].buffer)), `${M}x${K}x${N} differs`);
      tf.dispose([a, w]);
    }
    assert.ok(nativeCounts().packed > 0, 'a B matrix was packed');
  } finally {
    setNativeThreads(threads);
  }
});

test('a packed B is only reused for the same layout (reshapes and transposes share data)', { skip }, () => {
  tf.tidy(() => {
    const w = tf.tensor2d(rand(48 * 40, 9), [48, 40]);
    const wData = w.dataSync() as Float32Array;
    const check = (a: tf.Tensor, b: tf.Tensor, tb: boolean, as: number[], bs: number[]) => {
      const got = tf.matMul(a, b, false, tb).dataSync();
      const want = refMatMul(a.dataSync() as Float32Array, as, wData, bs, false, tb);
      assert.ok(maxErr(got, want, as[1]) < 1e-5, `${as} x ${bs}${tb ? ' tB' : ''}`);
    };
    for (let i = 0; i < 3; i++) check(tf.tensor2d(rand(3 * 48, i), [3, 48]), w, false, [3, 48], [48, 40]);
    const r = tf.reshape(w, [40, 48]); // same data, another layout
    for (let i = 0; i < 3; i++) check(tf.tensor2d(rand(2 * 40, i), [2, 40]), r, false, [2, 40], [40, 48]);
    for (let i = 0; i < 3; i++) check(tf.tensor2d(rand(2 * 40, i), [2, 40]), w, true, [2, 40], [48, 40]);
  });
});

test('packed weights of 2 MB and more start on a huge-page boundary of a larger buffer and give the same results', { skip }, (t) => {
  const addon = loadNative()!;
  const buf = new Float32Array(3 * 2 ** 19);
  const first = addon.hugePages(buf);
  assert.ok(Number.isInteger(first) && first >= 0 && first < 2 ** 19, `first index ${first}`);
  if (process.platform === 'linux') {
    buf.fill(1, first); // touch the advised part: huge pages where THP allows (a diagnostic, not a requirement)
    const smaps = existsSync('/proc/self/smaps_rollup') ? readFileSync('/proc/self/smaps_rollup', 'utf8') : '';
    const thp = existsSync('/sys/kernel/mm/transparent_hugepage/enabled') ? readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim() : 'absent';
    t.diagnostic(`THP ${thp}; ${/AnonHugePages:.*/.exec(smaps)?.[0] ?? 'no AnonHugePages line'}`);
  }
  tf.tidy(() => {
    const K = 768;
    const N = 1000; // 3 MB: its packed copy comes from the huge-page path
    const wData = rand(K * N, 21);
    const w = tf.tensor2d(wData, [K, N]);
    const before = nativeCounts().packed;
    for (let i = 0; i < 3; i++) {
      const M = [1, 8, 40][i];
      const a = rand(M * K, 30 + i);
      const got = tf.matMul(tf.tensor2d(a, [M, K]), w).dataSync();
      assert.ok(maxErr(got, refMatMul(a, [M, K], wData, [K, N], false, false), K) < 1e-5, `M ${M}`);
    }
    assert.equal(nativeCounts().packed, before + 1, 'packed once, on the second use');
  });
});

test('gradients through the override match finite differences and the wasm kernels', { skip }, () => {
  const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) => tf.sum(tf.square(tf.add(
    tf.matMul(tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' }), b, false, true), 0.5)));
  const a = tf.tensor2d(rand(9 * 6, 3), [9, 6]);
  const b = tf.tensor2d(rand(6 * 6, 4), [6, 6]);
  const bias = tf.tensor1d(rand(6, 5));
  const g = tf.grads(f);
  const [ga, gb, gbias] = g([a, b, bias]);
  const [wa, wb, wbias] = withoutNative(() => g([a, b, bias]));
  assert.ok(maxErr(ga.dataSync(), wa.dataSync(), 1) < 1e-4);
  assert.ok(maxErr(gb.dataSync(), wb.dataSync(), 1) < 1e-4);
  assert.ok(maxErr(gbias.dataSync(), wbias.dataSync(), 1) < 1e-4);
  // central differences on a few entries of a (float32: loose tolerance)
  const av = a.dataSync().slice();
  const eps = 1e-2;
  for (const i of [0, 7, 31, 53]) {
    const at = (d: number) => {
      const x = av.slice();
      x[i] += d;
      return tf.tidy(() => f(tf.tensor2d(x, [9, 6]), b, bias).dataSync()[0]);
    };
    const num = (at(eps) - at(-eps)) / (2 * eps);
    const ana = ga.dataSync()[i];
    assert.ok(Math.abs(num - ana) <= 2e-2 * Math.max(1, Math.abs(ana)), `d/da[${i}]: numeric ${num} vs ${ana}`);
  }
  tf.dispose([a, b, bias, ga, gb, gbias, wa, wb, wbias]);
});

test('unsupported cases fall back to the original wasm kernel', { skip }, () => {
  const before = nativeCounts();
  tf.tidy(() => {
    // prelu and relu6 are not native activations; int32 is not float32 (the wasm kernel refuses it)
    const a = tf.tensor2d(rand(6, 1), [2, 3]);
    const b = tf.tensor2d(rand(12, 2), [3, 4]);
    const want = refMatMul(a.dataSync() as Float32Array, [2, 3], b.dataSync() as Float32Array, [3, 4], false, false);
    const w = [0.1, 0.2, 0.3, 0.4];
    const y1 = tf.fused.matMul({ a, b, activation: 'prelu', preluActivationWeights: tf.tensor1d(w) });
    assert.ok(maxErr(y1.dataSync(), want.map((v, i) => (v > 0 ? v : v * w[i % 4])), 1) < 1e-5);
    const y2 = tf.fused.matMul({ a: tf.mul(a, 4), b, activation: 'relu6' });
    assert.ok(maxErr(y2.dataSync(), want.map((v) => Math.min(6, Math.max(0, 4 * v))), 1) < 1e-5);
    assert.throws(() => tf.matMul(tf.ones([2, 2], 'int32'), tf.ones([2, 2], 'int32')), /not yet supported/);
  });
  const after = nativeCounts();
  assert.equal(after.fallback - before.fallback, 3);
  assert.equal(after.native, before.native);
});

test('a bias of one value is broadcast natively (the wasm kernel reads it as [N])', { skip }, () => {
  tf.tidy(() => {
    const a = tf.tensor2d(rand(6, 1), [2, 3]);
    const b = tf.tensor2d(rand(12, 2), [3, 4]);
    const want = refMatMul(a.dataSync() as Float32Array, [2, 3], b.dataSync() as Float32Array, [3, 4], false, false);
    const before = nativeCounts().native;
    const y = tf.fused.matMul({ a, b, bias: tf.tensor1d([2]) });
    assert.equal(nativeCounts().native, before + 1);
    assert.ok(maxErr(y.dataSync(), want.map((v) => v + 2), 1) < 1e-5);
  });
});

test("the engine's decode and prefill run on the addon directly, and match the wasm kernels", { skip }, () => {
  const params = initParams(makeConfig({ nLayer: 2, nEmbd: 32, nHead: 4, nPositions: 64, vocabSize: 300 }), 3);
  const engine = Engine.fromParams(params);
  try {
    const run = () => {
      const { cache, logits } = engine.prefill([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      const out = [logits.slice()];
      for (let i = 0; i < 3; i++) out.push(engine.step([{ cache, token: 20 + i }])[0].slice());
      engine.release(cache);
      return out;
    };
    const before = nativeCounts();
    const native = run();
    const after = nativeCounts();
    assert.equal(after.fallback, before.fallback, 'no matmul fell back to the wasm kernels');
    // A single engine's passes call the addon directly (forwardDirect), not through tfjs kernels.
    assert.equal(after.native, before.native, 'no matmul went through the tfjs kernels');
    const wasm = withoutNative(run);
    native.forEach((l, i) => assert.ok(maxErr(l, wasm[i], 1) < 1e-4, `logits ${i} differ: ${maxErr(l, wasm[i], 1)}`));
  } finally {
    engine.dispose();
    disposeParams(params);
  }
});

test('NEMO_NATIVE=0 keeps the wasm kernels (and says so)', { skip: built ? false : skip || 'addon not built' }, () => {
  const code = `
    import { initBackend } from './model/backend.ts';
    import { nativeStatus } from './model/native/index.ts';
    import { nativeMatMulActive } from './model/native/kernels.ts';
    await initBackend('wasm');
    console.log(JSON.stringify({ active: nativeMatMulActive(), reason: nativeStatus().reason }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, NEMO_NATIVE: '0' }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { active: boolean; reason: string };
  assert.equal(out.active, false);
  assert.match(out.reason, /NEMO_NATIVE=0/);
});
