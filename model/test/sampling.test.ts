// The sampler (top-k by one selection pass, top-p by a falling logit threshold, buffers reused)
// against a straightforward reference: full softmax over the vocabulary, a full sort, the same
// filters. Same seed = same uniform draws, so the chosen tokens must be identical, and the
// probability of every token must match within 1e-6.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../rng.js';
import { loadNative } from '../native/index.js';
import { bannedByNgram, Sampler, topIndices, withJsTopK, type SamplerOptions } from '../inference/sampling.js';

interface RefOptions {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
}

/** Applies the logit filters (penalty, allowed, banned, n-gram) the way the sampler documents them. */
function refFilter(o: RefOptions, src: Float32Array, context: number[], banned: number[], allowed?: Int32Array): Float32Array {
  const l = Float32Array.from(src);
  if (o.repetitionPenalty !== 1) for (const id of new Set(context)) l[id] = l[id] > 0 ? l[id] / o.repetitionPenalty : l[id] * o.repetitionPenalty;
  const before = Float32Array.from(l);
  if (allowed) {
    const a = new Set(allowed);
    for (let i = 0; i < l.length; i++) if (!a.has(i)) l[i] = -Infinity;
  }
  for (const id of banned) l[id] = -Infinity;
  for (const id of bannedByNgram(context, o.noRepeatNgramSize)) l[id] = -Infinity;
  if (allowed && [...allowed].every((id) => l[id] === -Infinity)) for (const id of allowed) l[id] = before[id];
  return l;
}

/** Dense probabilities over the vocabulary and the order the draw walks (null = greedy/degenerate). */
function refDistribution(o: RefOptions, l: Float32Array): { p: Float64Array; order: number[] } | null {
  const n = l.length;
  let max = -Infinity;
  for (const v of l) max = Math.max(max, v);
  if (max === -Infinity) return null;
  const e = Array.from(l, (v) => Math.exp((v - max) / o.temperature));
  const total = e.reduce((a, b) => a + b, 0);
  const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => l[b] - l[a] || a - b);
  let order: number[];
  if (o.topK > 0 && !(o.topK >= n && o.topP >= 1)) order = sorted.slice(0, Math.min(o.topK, n));
  else if (o.topP < 1) order = sorted;
  else order = Array.from({ length: n }, (_, i) => i);
  if (o.topP < 1) {
    let cum = 0;
    for (let j = 0; j < order.length; j++) {
      cum += e[order[j]] / total;
      if (cum >= o.topP) {
        order = order.slice(0, j + 1);
        break;
      }
    }
  }
  const p = new Float64Array(n);
  let mass = 0;
  for (const id of order) mass += e[id] / total;
  for (const id of order) p[id] = e[id] / total / mass;
  return { p, order };
}

function refPick(o: RefOptions, rng: Rng, src: Float32Array, context: number[], banned: number[], allowed?: Int32Array): number {
  const l = refFilter(o, src, context, banned, allowed);
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  if (o.temperature === 0) return best;
  const d = refDistribution(o, l);
  if (!d) return best;
  let r = rng.next();
  for (const id of d.order) {
    r -= d.p[id];
    if (r < 0) return id;
  }
  return d.order[d.order.length - 1];
}

function randomLogits(rng: Rng, n: number, kind: number): Float32Array {
  const l = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.normal() * (kind === 2 ? 8 : 2.5);
    l[i] = kind === 1 ? Math.round(x * 2) / 2 : x; // kind 1: many ties
  }
  if (kind === 3) for (let i = 0; i < n; i += 3) l[i] = -Infinity;
  return l;
}

test('topIndices: the k largest, ties to the lower index, with and without an id subset', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng.next() * 300);
    const v = Float32Array.from({ length: n }, () => Math.round(rng.normal() * 3));
    const k = Math.floor(rng.next() * (n + 3));
    const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
    assert.deepEqual([...topIndices(v, k)], want);
    const ids = Int32Array.from(Array.from({ length: n }, (_, i) => i).filter(() => rng.next() < 0.5).sort(() => rng.next() - 0.5));
    const wantSub = [...ids].sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
    assert.deepEqual([...topIndices(v, k, ids, new Int32Array(k + 1))], wantSub);
  }
});

test('topIndices on vocabulary-size inputs: the native loop and the JS loop agree (ties, infinities, NaN, odd lengths)', (t) => {
  const native = loadNative();
  if (!native) t.diagnostic('native addon not loaded: only the JS loop is checked');
  const rng = new Rng(12);
  for (let trial = 0; trial < 120; trial++) {
    const n = 4096 + Math.floor(rng.next() * 40000);
    const kind = trial % 5;
    const v = Float32Array.from({ length: n }, () => {
      const x = rng.normal() * 4;
      return kind === 1 ? Math.round(x) : kind === 2 ? Math.round(x * 8) / 8 : x; // 1, 2: many ties
    });
    if (kind === 3) for (let i = 0; i < n; i += 2) v[i] = -Infinity;
    if (kind === 4) v[Math.floor(rng.next() * n)] = Infinity;
    if (trial % 17 === 0) v[Math.floor(rng.next() * n)] = NaN; // declined by the addon: the JS loop decides
    const k = [1, 2, 40, 50, 255, 256, 257, 1000][trial % 8];
    const want = withJsTopK(() => [...topIndices(v, k)]);
    assert.deepEqual([...topIndices(v, k)], want, `trial ${trial}: n ${n}, k ${k}`);
    if (!v.some(Number.isNaN)) {
      const ref = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
      assert.deepEqual(want, ref);
    }
    if (native && k <= 256) {
      const out = new Int32Array(k);
      assert.equal(native.topK(v, k, out), v.some(Number.isNaN) ? -1 : k);
    }
  }
  if (native) {
    assert.equal(native.topK(new Float32Array(5000), 300, new Int32Array(300)), -1);
    assert.equal(native.topK(new Float32Array(3), 10, new Int32Array(3)), 3);
    assert.throws(() => native.topK(new Float32Array(10), 5, new Int32Array(4)), /shorter than k/);
    assert.throws(() => native.topK(new Float32Array(10), 5, new Float32Array(5) as unknown as Int32Array), /Int32Array/);
  }
});

test('sampler = full-softmax reference: same tokens for the same draws, same probabilities', () => {
  const rng = new Rng(7);
  let combos = 0;
  for (const n of [7, 300, 5000]) {
    for (const temperature of [0, 0.6, 1, 1.7]) {
      for (const topK of [0, 1, 5, 40, n, n + 5]) {
        for (const topP of [1, 0.9, 0.5, 0.999]) {
          for (const [repetitionPenalty, noRepeatNgramSize] of [[1, 0], [1.3, 2]]) {
            const o: RefOptions = { temperature, topK, topP, repetitionPenalty, noRepeatNgramSize };
            const seed = combos++;
            const sampler = new Sampler({ ...o, seed } satisfies SamplerOptions);
            const refRng = new Rng(seed);
            for (let trial = 0; trial < 6; trial++) {
              const logits = randomLogits(rng, n, trial % 4);
              const context = Array.from({ length: 12 }, () => Math.floor(rng.next() * Math.min(n, 20)));
              const banned = trial === 1 ? [0, 1, 2] : [];
              const allowed = trial === 4 ? Int32Array.from(new Set(Array.from({ length: 9 }, () => Math.floor(rng.next() * n)))) : undefined;
              const want = refPick(o, refRng, logits, context, banned, allowed);
              const got = sampler.pick(Float32Array.from(logits), context, banned, allowed);
              assert.equal(got, want, `n=${n} ${JSON.stringify(o)} trial ${trial}`);
              if (temperature === 0) continue;
              // Probabilities: dense reference vs the sampler's candidate list.
              const filtered = refFilter(o, logits, context, banned, allowed);
              const ref = refDistribution(o, filtered);
              const d = new Sampler(o).distribution(Float32Array.from(filtered), allowed);
              assert.equal(d === null, ref === null);
              if (!d || !ref) continue;
              const p = new Float64Array(n);
              for (let j = 0; j < d.count; j++) p[d.ids[j]] += d.weights[j] / d.mass;
              for (let i = 0; i < n; i++) assert.ok(Math.abs(p[i] - ref.p[i]) <= 1e-6, `p[${i}] ${p[i]} vs ${ref.p[i]} n=${n} ${JSON.stringify(o)}`);
            }
          }
        }
      }
    }
  }
  assert.ok(combos > 500);
});

test('sampler: everything banned falls back to argmax; buffers grow with the vocabulary', () => {
  const s = new Sampler({ temperature: 1, topK: 3, seed: 1 });
  assert.equal(s.pick(Float32Array.from([1, 2, 3]), [], [0, 1, 2]), 0);
  const big = new Float32Array(50_000);
  big[49_999] = 100;
  assert.equal(s.pick(big, []), 49_999);
  const p = new Sampler({ temperature: 1, topP: 0.5, seed: 1 });
  assert.equal(p.pick(Float32Array.from(big), []), 49_999);
  assert.equal(p.pick(Float32Array.from([0, 0, 5, 0]), []), 2);
});
