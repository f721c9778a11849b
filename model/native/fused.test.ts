// The native fused inference ops (kernels.ts: addLayerNorm, matMulGelu, decodeAttention) against
// straightforward float64 references, for odd sizes, several sequences of different lengths and
// KV buffers crossing the engine's first capacity (64 rows); bit-identical for 1 and 2 threads;
// the engine's fused decode against its tfjs-op path. Skips when the addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { makeConfig } from '../nn/config.js';
import { Engine } from '../inference/engine.js';
import { disposeParams, initParams } from '../nn/params.js';
import { Rng } from '../rng.js';
import { ADDON_PATH, nativeStatus } from './index.js';
import { addLayerNorm, decodeAttention, matMulGelu, nativeCounts, nativeOpsActive, setNativeThreads, withoutNative } from './kernels.js';

await initBackend('wasm');
const skip = !existsSync(ADDON_PATH)
  ? `native addon not built (${ADDON_PATH} missing; run \`npm run build:native\`)`
  : process.env.NEMO_NATIVE === '0' ? 'NEMO_NATIVE=0: native ops disabled' : false;

const rand = (n: number, seed: number, scale = 1) => new Rng(seed).fillNormal(new Float32Array(n), scale);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Runs fn with 1 and then 2 native threads; asserts bit-identical results; returns the first. */
function bothThreadCounts(fn: () => Float32Array): Float32Array {
  const threads = nativeStatus().threads ?? 1;
  try {
    setNativeThreads(1);
    const one = fn();
    setNativeThreads(2);
    const two = fn();
    assert.ok(same(one, two), 'results differ between 1 and 2 threads');
    return one;
  } finally {
    setNativeThreads(threads);
  }
}

test('the fused ops are active with the addon', { skip }, () => {
  assert.ok(nativeOpsActive());
  assert.equal(withoutNative(() => nativeOpsActive()), false);
});

test('addLayerNorm = LayerNorm(x + y + bias) · gain + beta (float64 reference)', { skip }, () => {
  for (const [rows, C, withBias] of [[1, 768, true], [3, 17, false], [130, 33, true], [8, 1, true], [2, 5000, false]] as const) {
    const x = rand(rows * C, rows + C);
    const y = rand(rows * C, 2 * C + 1);
    const yb = rand(C, 3);
    const g = rand(C, 4);
    const b = rand(C, 5);
    const eps = 1e-5;
    const want = new Float64Array(rows * C);
    for (let r = 0; r < rows; r++) {
      const s = Array.from({ length: C }, (_, j) => x[r * C + j] + y[r * C + j] + (withBias ? yb[j] : 0));
      const mean = s.reduce((p, q) => p + q, 0) / C;
      const v = s.reduce((p, q) => p + (q - mean) ** 2, 0) / C;
      for (let j = 0; j < C; j++) want[r * C + j] = ((s[j] - mean) / Math.sqrt(v + eps)) * g[j] + b[j];
    }
    const got = bothThreadCounts(() => tf.tidy(() => addLayerNorm(tf.tensor2d(x, [rows, C]), tf.tensor2d(y, [rows, C]),
      withBias ? tf.tensor1d(yb) : undefined, tf.tensor1d(g), tf.tensor1d(b), eps).dataSync() as Float32Array));
    // C = 1: x - mean is 0, the output is beta
    assert.ok(maxDiff(got, want) < 2e-5 * Math.max(1, Math.sqrt(C) / 8), `${rows}x${C}: ${maxDiff(got, want)}`);
  }
});

test('matMulGelu = tanh-GELU(x · w + bias) for streaming and blocked shapes, packed or not', { skip }, () => {
  for (const [M, K, N] of [[1, 768, 3072], [3, 77, 300], [8, 33, 17], [13, 33, 70], [130, 64, 99]]) {
    const x = rand(M * K, M * 31 + K);
    const w = rand(K * N, N, 1 / Math.sqrt(K));
    const bias = rand(N, 9);
    const want = new Float64Array(M * N);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = bias[j];
        for (let k = 0; k < K; k++) s += x[i * K + k] * w[k * N + j];
        want[i * N + j] = 0.5 * s * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (s + 0.044715 * s ** 3)));
      }
    }
    const wt = tf.tensor2d(w, [K, N]);
    const before = nativeCounts();
    // Three uses of one weight: the second and third read packB's copy (any M).
    const runs = [0, 1, 2].map(() => bothThreadCounts(() => tf.tidy(() => matMulGelu(tf.tensor2d(x, [M, K]), wt, tf.tensor1d(bias)).dataSync() as Float32Array)));
    wt.dispose();
    assert.ok(nativeCounts().native - before.native === 6);
    for (const r of runs) {
      assert.ok(same(r, runs[0]), `${M}x${K}x${N}: packed and unpacked differ`);
      assert.ok(maxDiff(r, want) < 1e-5 * Math.sqrt(K), `${M}x${K}x${N}: ${maxDiff(r, want)}`);
    }
  }
});

/** float64 attention of one query row (all heads) over rows 0..T-1 of K, V (head-major [H][cap][D]). */
function refAttention(q: Float32Array, K: Float32Array, V: Float32Array, T: number, C: number, H: number): Float64Array {
  const D = C / H;
  const cap = K.length / C;
  const at = (t: number, h: number, j: number) => (h * cap + t) * D + j;
  const out = new Float64Array(C);
  for (let h = 0; h < H; h++) {
    const s = Array.from({ length: T }, (_, t) => {
      let d = 0;
      for (let j = 0; j < D; j++) d += q[h * D + j] * K[at(t, h, j)];
      return d / Math.sqrt(D);
    });
    const mx = Math.max(...s);
    const e = s.map((v) => Math.exp(v - mx));
    const z = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < D; j++) {
      let acc = 0;
      for (let t = 0; t < T; t++) acc += (e[t] / z) * V[at(t, h, j)];
      out[h * D + j] = acc;
    }
  }
  return out;
}

test('decodeAttention: several sequences of different lengths, odd head sizes, rows written in place', { skip }, () => {
  for (const [C, H, lengths] of [[21, 3, [0, 5, 63, 64, 130]], [768, 12, [15, 400]], [10, 1, [1]], [36, 4, [7, 7, 0]]] as const) {
    const B = lengths.length;
    const cap = lengths.map((l) => l + 1 + (l % 3)); // some buffers exactly full after the step
    const qkv = rand(B * 3 * C, C + B);
    const kBufs = lengths.map((l, i) => rand(cap[i] * C, 100 + i));
    const vBufs = lengths.map((l, i) => rand(cap[i] * C, 200 + i));
    const kOrig = kBufs.map((b) => b.slice());
    const vOrig = vBufs.map((b) => b.slice());
    const got = bothThreadCounts(() => tf.tidy(() => decodeAttention(tf.tensor2d(qkv, [B, 3 * C]), kBufs, vBufs, [...lengths], H, 1 / Math.sqrt(C / H)).dataSync() as Float32Array));
    lengths.forEach((l, i) => {
      const row = (src: Float32Array, off: number) => src.subarray((i * 3 + off) * C, (i * 3 + off + 1) * C);
      // row l of every head now holds the step's k / v; every other element is untouched
      const D = C / H;
      for (const [buf, orig, off] of [[kBufs[i], kOrig[i], 1], [vBufs[i], vOrig[i], 2]] as const) {
        for (let h = 0; h < H; h++) {
          for (let t = 0; t < cap[i]; t++) {
            const got = buf.subarray((h * cap[i] + t) * D, (h * cap[i] + t + 1) * D);
            const want = t === l ? row(qkv, off).subarray(h * D, (h + 1) * D) : orig.subarray((h * cap[i] + t) * D, (h * cap[i] + t + 1) * D);
            assert.ok(same(got, want), `sequence ${i} head ${h} row ${t}`);
          }
        }
      }
      const want = refAttention(row(qkv, 0), kBufs[i], vBufs[i], l + 1, C, H);
      const d = maxDiff(got.subarray(i * C, (i + 1) * C), want);
      assert.ok(d < 2e-5, `C=${C} H=${H} sequence ${i} (length ${l}): ${d}`);
    });
  }
  // A buffer without room for the new row is refused, not overrun.
  assert.throws(() => tf.tidy(() => decodeAttention(tf.zeros([1, 6]), [new Float32Array(4)], [new Float32Array(4)], [2], 1, 1)), /no room/);
  assert.throws(() => tf.tidy(() => decodeAttention(tf.zeros([1, 6]), [new Float32Array(5)], [new Float32Array(5)], [0], 1, 1)), /multiples of C/);
});

test('decodeAttention with counts: prompt rows attend causally to the cache and to each other', { skip }, () => {
  // counts > 1 is the prefill / extend form: row j of sequence i sits at position lengths[i] + j.
  for (const [C, H, lengths, counts] of [[21, 3, [0, 5, 40], [1, 17, 40]], [768, 12, [0, 100], [37, 3]], [36, 4, [3], [70]]] as const) {
    const rows = counts.reduce((a, b) => a + b, 0);
    const cap = lengths.map((l, i) => l + counts[i] + (i % 2));
    const qkv = rand(rows * 3 * C, 7 + C);
    const kBufs = lengths.map((l, i) => rand(cap[i] * C, 300 + i));
    const vBufs = lengths.map((l, i) => rand(cap[i] * C, 400 + i));
    const got = bothThreadCounts(() => tf.tidy(() =>
      decodeAttention(tf.tensor2d(qkv, [rows, 3 * C]), kBufs, vBufs, [...lengths], H, 1 / Math.sqrt(C / H), [...counts]).dataSync() as Float32Array));
    const D = C / H;
    let r0 = 0;
    lengths.forEach((l, i) => {
      for (let j = 0; j < counts[i]; j++) {
        const row = (off: number) => qkv.subarray(((r0 + j) * 3 + off) * C, ((r0 + j) * 3 + off + 1) * C);
        for (let h = 0; h < H; h++) {
          assert.ok(same(kBufs[i].subarray((h * cap[i] + l + j) * D, (h * cap[i] + l + j + 1) * D), row(1).subarray(h * D, (h + 1) * D)), `k row ${l + j}`);
          assert.ok(same(vBufs[i].subarray((h * cap[i] + l + j) * D, (h * cap[i] + l + j + 1) * D), row(2).subarray(h * D, (h + 1) * D)), `v row ${l + j}`);
        }
        const want = refAttention(row(0), kBufs[i], vBufs[i], l + j + 1, C, H);
        const d = maxDiff(got.subarray((r0 + j) * C, (r0 + j + 1) * C), want);
        assert.ok(d < 2e-5, `C=${C} H=${H} sequence ${i} row ${j}: ${d}`);
      }
      r0 += counts[i];
    });
  }
  assert.throws(() => tf.tidy(() => decodeAttention(tf.zeros([3, 6]), [new Float32Array(8)], [new Float32Array(8)], [2], 1, 1, [3])), /no room/);
  assert.throws(() => tf.tidy(() => decodeAttention(tf.zeros([1, 6]), [new Float32Array(8)], [new Float32Array(8)], [0], 1, 1, [0])), /positive/);
});

test('engine: fused decode (KV buffers growing past 64 rows) equals the tfjs-op path, batched or not', { skip }, () => {
  // nInner not 4 * nEmbd: the direct path must take the MLP width from the config.
  const params = initParams(makeConfig({ nLayer: 2, nEmbd: 48, nHead: 3, nInner: 100, nPositions: 160, vocabSize: 97 }), 5);
  const engine = Engine.fromParams(params);
  try {
    const prompts = [[1, 2, 3], Array.from({ length: 60 }, (_, i) => (i * 7) % 97), [50, 51]];
    const steps = 12; // the second sequence crosses 64 rows
    const run = (batched: boolean) => {
      const caches = prompts.map((p) => engine.prefill(p).cache);
      const out: Float32Array[][] = prompts.map(() => []);
      for (let s = 0; s < steps; s++) {
        const token = (i: number) => (s * 13 + i * 5) % 97;
        if (batched) engine.step(caches.map((cache, i) => ({ cache, token: token(i) }))).forEach((l, i) => out[i].push(l.slice()));
        else caches.forEach((cache, i) => out[i].push(engine.step([{ cache, token: token(i) }])[0].slice()));
      }
      const fusedLayout = caches.map((c) => !!c.nk);
      caches.forEach((c) => engine.release(c));
      return { out, fusedLayout };
    };
    const before = tf.memory().numTensors;
    const batched = run(true);
    const single = run(false);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    const ops = withoutNative(() => run(true));
    assert.deepEqual(batched.fusedLayout, [true, true, true]);
    assert.deepEqual(ops.fusedLayout, [false, false, false]);
    prompts.forEach((_, i) => {
      for (let s = 0; s < steps; s++) {
        // One (sequence, head) is computed alike in any batch: bit-identical.
        assert.ok(same(batched.out[i][s], single.out[i][s]), `sequence ${i} step ${s}: batched differs`);
        assert.ok(maxDiff(batched.out[i][s], ops.out[i][s]) < 1e-4, `sequence ${i} step ${s}: ${maxDiff(batched.out[i][s], ops.out[i][s])}`);
      }
    });
    // extend (chunked prefill) after fused decode steps reads the buffers
    const { cache } = engine.prefill([4, 5, 6]);
    engine.step([{ cache, token: 7 }]);
    const l1 = engine.extend(cache, [8, 9, 10]);
    engine.release(cache);
    const l2 = withoutNative(() => {
      const c = engine.prefill([4, 5, 6]);
      engine.step([{ cache: c.cache, token: 7 }]);
      const l = engine.extend(c.cache, [8, 9, 10]);
      engine.release(c.cache);
      return l;
    });
    assert.ok(maxDiff(l1, l2) < 1e-4);
    // a cache made with the fused ops is refused by the tfjs-op path (and vice versa), not misread
    const c = engine.prefill([1, 2]).cache;
    assert.throws(() => withoutNative(() => engine.step([{ cache: c, token: 3 }])), /made with the native fused ops/);
    engine.release(c);
  } finally {
    engine.dispose();
    disposeParams(params);
  }
});
