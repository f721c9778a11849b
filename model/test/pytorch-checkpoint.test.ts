// PyTorch checkpoints written by PyTorch 1.13 itself (fixtures/torch/make-fixtures.py): a tiny
// GPT-1 in the HF OpenAIGPTLMHeadModel layout, zip and legacy formats, F32/F16/BF16, whose logits
// PyTorch computed in float64. The engine must match them, and refuse bad or hostile files.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { detectFormat, loadCheckpoint, readCheckpoint } from '../io/checkpoint.js';
import { CheckpointError } from '../errors.js';
import { logits } from '../nn/gpt.js';
import { openTorchCheckpoint } from '../io/pytorch/torch-file.js';
import { maxAbsDiff, referenceLogits } from './reference.js';

const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const fixture = (f: string) => path.join(FIX, f);
interface Reference { ids: number[]; tokenTypes: number[]; variants: Record<string, { plain: number[][]; typed: number[][] }> }
let ref: Reference;
let dir: string;

before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-torch-'));
  ref = JSON.parse(await readFile(fixture('logits.json'), 'utf8')) as Reference;
});
after(() => rm(dir, { recursive: true, force: true }));

/** A model folder as the hub has it: config.json, vocab.txt, pytorch_model.bin. */
async function modelFolder(name: string, weights: string, config?: (c: Record<string, unknown>) => void): Promise<string> {
  const d = path.join(dir, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d);
  const cfg = JSON.parse(await readFile(fixture('config.json'), 'utf8')) as Record<string, unknown>;
  config?.(cfg);
  await writeFile(path.join(d, 'config.json'), JSON.stringify(cfg));
  await copyFile(fixture('vocab.txt'), path.join(d, 'vocab.txt'));
  await copyFile(weights, path.join(d, 'pytorch_model.bin'));
  return d;
}

for (const variant of ['f32-zip', 'f32-legacy', 'f16-zip', 'f16-legacy', 'bf16-zip']) {
  test(`${variant}: logits equal PyTorch's float64 logits within 1e-4`, async () => {
    const d = await modelFolder(variant, fixture(`gpt-${variant}.bin`));
    assert.equal(await detectFormat(d), 'pytorch');
    const { config, params } = await loadCheckpoint(d);
    assert.equal(config.nPositions, 513); // n_positions wins over n_ctx = 512
    const want = ref.variants[variant].plain.flat();
    const got = tf.tidy(() => logits(params, [ref.ids])).dataSync();
    assert.ok(maxAbsDiff(got, want) < 1e-4, `max diff ${maxAbsDiff(got, want)}`);
    assert.ok(Math.max(...want.map(Math.abs)) > 1); // not a trivially small comparison
    // The float64 reference of the project, on the same host arrays, agrees too.
    const host = await readCheckpoint(d);
    const arrays = new Map([...host.arrays].map(([n, t]) => [n, t.data]));
    assert.ok(maxAbsDiff(referenceLogits(host.config, arrays, ref.ids).flat(), want) < 1e-4);
  });
}

test('the tied head shares its storage; views keep their offsets and strides', async () => {
  const ck = await openTorchCheckpoint(fixture('gpt-f32-zip.bin'));
  try {
    assert.equal(ck.format, 'zip');
    const head = ck.tensors.get('lm_head.weight')!;
    assert.equal(head.storage.key, ck.tensors.get('transformer.tokens_embed.weight')!.storage.key);
    const w = ck.tensors.get('transformer.h.0.attn.c_attn.weight')!;
    assert.deepEqual([w.shape, w.stride], [[8, 24], [1, 8]]);
    const b = ck.tensors.get('transformer.h.1.mlp.c_fc.bias')!;
    assert.equal(b.offset, 5);
    // The elements before the offset (7.0) are not part of the bias.
    assert.ok(!(await ck.read('transformer.h.1.mlp.c_fc.bias')).data.includes(7));
  } finally {
    await ck.close();
  }
  const legacy = await openTorchCheckpoint(fixture('gpt-f32-legacy.bin'));
  try {
    assert.equal(legacy.format, 'legacy');
    const a = (await legacy.read('transformer.h.0.attn.c_attn.weight')).data;
    const z = await openTorchCheckpoint(fixture('gpt-f32-zip.bin'));
    const b = (await z.read('transformer.h.0.attn.c_attn.weight')).data;
    await z.close();
    assert.deepEqual(a, b);
  } finally {
    await legacy.close();
  }
});

test('a pickle naming os.system is refused by name and never run', async () => {
  for (const f of ['hostile-os-system.pkl', 'hostile-os-system.pt']) {
    await assert.rejects(openTorchCheckpoint(fixture(f)), (e: Error) =>
      e instanceof CheckpointError && e.message.includes(fixture(f)) && /refused global os\.system/.test(e.message));
  }
});

test('bad files: one clear error naming the file (and the tensor)', async () => {
  const whole = await readFile(fixture('gpt-f32-zip.bin'));
  const legacy = await readFile(fixture('gpt-f32-legacy.bin'));
  const cases: Array<[string, Buffer, RegExp]> = [
    ['cut.bin', whole.subarray(0, whole.length >> 1), /corrupt or truncated zip/],
    ['cut-legacy.bin', legacy.subarray(0, legacy.length - 100), /truncated/],
    ['cut-pickle.bin', legacy.subarray(0, 300), /truncated pickle/],
    ['text.bin', Buffer.from('hello, I am not a checkpoint\n'), /not a PyTorch checkpoint/],
    ['empty.bin', Buffer.alloc(0), /not a PyTorch checkpoint/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = path.join(dir, name);
    await writeFile(f, bytes);
    await assert.rejects(async () => {
      const ck = await openTorchCheckpoint(f);
      try {
        for (const n of ck.tensors.keys()) await ck.read(n);
      } finally {
        await ck.close();
      }
    }, (e: Error) => e instanceof CheckpointError && e.message.startsWith(f) && re.test(e.message), name);
  }
  const int64 = await modelFolder('int64', fixture('gpt-int64-legacy.bin'));
  await assert.rejects(loadCheckpoint(int64), (e: Error) =>
    e instanceof CheckpointError && (e as CheckpointError).tensor === 'transformer.h.1.ln_2.weight' && /unsupported dtype I64 \(torch\.LongStorage/.test(e.message));
  const wide = await modelFolder('wide', fixture('gpt-f16-zip.bin'), (c) => { c.vocab_size = 40; });
  await assert.rejects(loadCheckpoint(wide), /tensor tokens_embed\.weight has shape \[32,8\], config\.json expects \[40,8\]/);
  const deep = await modelFolder('deep', fixture('gpt-f16-zip.bin'), (c) => { c.n_layer = 3; });
  await assert.rejects(loadCheckpoint(deep), /pytorch_model\.bin: missing tensor h\.2\.attn\.c_attn\.weight/);
});
