// Byte tokens stay valid UTF-8 during sampling: the rule itself on crafted logits (so the test can
// force a model that "wants" a lone continuation byte or an unfinished character), the token limit
// landing inside a character, GPT-1 vocabularies left untouched, and a tiny real nemo-bpe model
// (256 of its ~360 tokens are byte tokens) sampled hot through the real batcher.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Batcher } from '../inference/batcher.js';
import { makeConfig } from '../nn/config.js';
import { Sequence, type SequenceResult } from '../inference/sequence.js';
import { loadRuntime, type Runtime } from '../inference/runtime.js';
import { Rng } from '../rng.js';
import { Sampler } from '../inference/sampling.js';
import { createTinyModel } from './tiny-model.js';
import { BpeTokenizer, byteToken } from '../tokenizer/bpe.js';
import { Utf8Guard, utf8TablesFor } from '../inference/utf8-constraint.js';

// A nemo-bpe vocabulary: 256 byte tokens (ids 0..255), then a few words and an end token.
const WORDS = ['a', 'b', '▁hi', '<|endoftext|>'];
const nemoEncoder: Record<string, number> = {};
for (let b = 0; b < 256; b++) nemoEncoder[byteToken(b)] = b;
WORDS.forEach((w, i) => (nemoEncoder[w] = 256 + i));
const nemo = BpeTokenizer.fromData(nemoEncoder, [], { config: { type: 'nemo-bpe', eos_token: '<|endoftext|>', special_tokens: ['<|endoftext|>'] } });
const A = 256;
const EOS = 259;
const config = makeConfig({ vocabSize: nemo.vocabSize, nPositions: 64, nEmbd: 8, nLayer: 1, nHead: 1 });

/** Logits that strongly favour `favour` (everything else small random noise from `rng`). */
function logitsFavouring(rng: Rng, n: number, favour: number[]): Float32Array {
  const l = new Float32Array(n);
  for (let i = 0; i < n; i++) l[i] = rng.next();
  favour.forEach((id, rank) => (l[id] = 50 - rank));
  return l;
}

/** Feeds crafted logits (one list of favoured ids per step) to a Sequence until it finishes. */
function drive(seq: Sequence, steps: number[][], seed = 1): void {
  const rng = new Rng(seed);
  for (const favour of steps) {
    if (seq.accept(logitsFavouring(rng, config.vocabSize, favour)) === null) return;
  }
}

test('tables are built once per tokenizer, and only for byte-fallback vocabularies', () => {
  const t = utf8TablesFor(nemo);
  assert.ok(t);
  assert.equal(utf8TablesFor(nemo), t);
  assert.equal(t.byteOf[0xe4], 0xe4);
  assert.equal(t.isByte(0xe4), true);
  assert.equal(t.isByte(A), false);
  assert.equal(t.isByte(EOS), false);
  assert.equal(t.neverFirst.length, 64 + 2 + 11); // 80–BF, C0, C1, F5–FF
  const gpt1 = BpeTokenizer.fromData({ 'a</w>': 0, 'b</w>': 1, '<unk>': 2 }, []);
  assert.equal(utf8TablesFor(gpt1), null);
});

test('the guard follows UTF-8: lead byte, exact continuation count, narrow second-byte ranges', () => {
  const g = new Utf8Guard(utf8TablesFor(nemo)!);
  const allowed = () => {
    const r = g.rule();
    return r.allowed ? [r.allowed[0], r.allowed[r.allowed.length - 1]] : null;
  };
  assert.equal(allowed(), null);
  assert.ok([...g.rule().banned!].includes(0x80) && [...g.rule().banned!].includes(0xc0) && [...g.rule().banned!].includes(0xf5));
  assert.ok(![...g.rule().banned!].includes(0xe4) && ![...g.rule().banned!].includes(0x41));
  const cases: [number, number, number, number][] = [
    [0xc3, 1, 0x80, 0xbf],
    [0xe0, 2, 0xa0, 0xbf],
    [0xe4, 2, 0x80, 0xbf],
    [0xed, 2, 0x80, 0x9f],
    [0xf0, 3, 0x90, 0xbf],
    [0xf4, 3, 0x80, 0x8f],
  ];
  for (const [lead, need, lo, hi] of cases) {
    g.push(lead);
    assert.deepEqual(allowed(), [lo, hi], `second byte after ${lead.toString(16)}`);
    assert.equal(g.pendingTokens, 1);
    for (let k = 1; k < need; k++) {
      g.push(lo);
      assert.deepEqual(allowed(), [0x80, 0xbf]);
      assert.equal(g.pendingTokens, k + 1);
    }
    g.push(0x80);
    assert.equal(allowed(), null, `character after ${lead.toString(16)} complete`);
    assert.equal(g.pendingTokens, 0);
  }
});

test('a lone continuation byte is never sampled, and a started character is always finished', () => {
  for (const temperature of [0, 1]) {
    // Step 1 the model wants 0x80 (invalid start) then 0xE4; step 2 wants the word "a" over 0xB8
    // (the character is unfinished); step 3 wants the end token over 0xAD.
    const seq = new Sequence(nemo, config, [A], { maxNewTokens: 10, temperature, topK: temperature ? 3 : 0, seed: 7 });
    drive(seq, [[0x80, 0xe4], [A, EOS, 0xb8], [EOS, 0xad], [EOS]]);
    assert.deepEqual(seq.generated, [0xe4, 0xb8, 0xad]);
    const r = seq.result();
    assert.equal(r.text, '中');
    assert.equal(r.finishReason, 'stop');
  }
});

test('when the n-gram ban removes every allowed continuation, the character is completed anyway', () => {
  // The prompt holds F4 followed by each of its 16 possible second bytes (80–8F), so after a new
  // F4 the no-repeat-2-gram rule bans all of them; the UTF-8 rule wins and the model's favourite
  // allowed byte is taken.
  const prompt: number[] = [];
  for (let x = 0; x < 16; x++) prompt.push(0xf4, 0x80 + x, 0x80, 0x80);
  prompt.push(A);
  const cfg = makeConfig({ vocabSize: nemo.vocabSize, nPositions: 128, nEmbd: 8, nLayer: 1, nHead: 1 });
  const seq = new Sequence(nemo, cfg, prompt, { maxNewTokens: 4, temperature: 0, noRepeatNgramSize: 2, seed: 1 });
  drive(seq, [[0xf4], [A, 0x85], [0x80, 0x81], [EOS, 0xbf]]);
  assert.deepEqual(seq.generated, [0xf4, 0x85, 0x81, 0xbf]);
  assert.equal(seq.result().text, Buffer.from([0xf4, 0x85, 0x81, 0xbf]).toString('utf8'));
  assert.ok(!seq.result().text.includes('\uFFFD'));
});

test('the token limit inside a character drops the unfinished bytes from the text', () => {
  const chunks: string[] = [];
  const seq = new Sequence(nemo, config, [A], { maxNewTokens: 3, temperature: 0, seed: 1 }, (c) => chunks.push(c));
  drive(seq, [[A], [0xe4], [0xb8]]);
  const r = seq.result();
  assert.equal(r.finishReason, 'length');
  assert.equal(r.completionTokens, 3);
  assert.equal(r.text, 'a');
  assert.equal(chunks.join(''), 'a');
  // A stop string is still found in the complete part.
  const s2 = new Sequence(nemo, config, [A], { maxNewTokens: 5, temperature: 0, stop: ['b'], seed: 1 });
  drive(s2, [[A], [A + 1], [0xe4]]);
  assert.equal(s2.result().text, 'a');
});

test('a GPT-1 vocabulary (no byte tokens) samples exactly as the bare sampler', () => {
  const encoder: Record<string, number> = { '<unk>': 0 };
  for (let i = 1; i < 300; i++) encoder[`w${i}</w>`] = i;
  const gpt1 = BpeTokenizer.fromData(encoder, []);
  const cfg = makeConfig({ vocabSize: 300, nPositions: 64, nEmbd: 8, nLayer: 1, nHead: 1 });
  const opts = { maxNewTokens: 40, temperature: 1, topK: 50, topP: 0.9, seed: 11 };
  const seq = new Sequence(gpt1, cfg, [1], opts);
  const bare = new Sampler(opts);
  const rng = new Rng(3);
  const context = [1];
  for (let i = 0; i < 40; i++) {
    const l = Float32Array.from({ length: 300 }, () => rng.next() * 4);
    const want = bare.pick(Float32Array.from(l), context);
    const got = seq.accept(l);
    context.push(want);
    if (i < 39) assert.equal(got, want);
  }
  assert.deepEqual(seq.generated, context.slice(1));
});

let dir: string;
let rt: Runtime;
let batcher: Batcher;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-utf8-'));
  await createTinyModel(dir, { seed: 9 });
  rt = await loadRuntime(dir);
  batcher = new Batcher(rt.engine, 4);
});
after(async () => {
  batcher.close();
  rt.engine.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('a tiny real nemo-bpe model sampled hot never produces U+FFFD, and is still deterministic', async () => {
  const one = (seed: number, prompt: string) =>
    new Promise<SequenceResult & { chunks: string[]; ids: number[] }>((resolve, reject) => {
      const chunks: string[] = [];
      const seq = new Sequence(rt.tokenizer, rt.config, prompt, { seed, maxNewTokens: 40, temperature: 1.5 }, (c) => chunks.push(c));
      batcher.add({ id: `u${seed}-${Math.random()}`, seq, onDone: (r) => resolve({ ...r, chunks, ids: seq.generated }), onError: reject });
    });
  const highByteIds = new Set(Array.from({ length: 128 }, (_, i) => rt.tokenizer.tokenToId(byteToken(0x80 + i))));
  let highBytes = 0;
  for (let seed = 1; seed <= 8; seed++) {
    const r = await one(seed, seed % 2 ? '床前明月光，' : 'User: hi\nBot:');
    assert.ok(!r.text.includes('\uFFFD'), `seed ${seed}: ${JSON.stringify(r.text)}`);
    assert.equal(r.chunks.join(''), r.text);
    highBytes += r.ids.filter((id) => highByteIds.has(id)).length;
  }
  // The model did spell multi-byte characters with byte tokens: the rule was exercised.
  assert.ok(highBytes > 20, `only ${highBytes} byte tokens >= 0x80 were generated`);
  const a = await one(5, '床前明月光，');
  const b = await one(5, '床前明月光，');
  assert.deepEqual(a.ids, b.ids);
  assert.equal(a.text, b.text);
});
