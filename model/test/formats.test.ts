// File formats and conversions below the checkpoint loader: float16/bfloat16, safetensors and npy
// edge cases, backend selection errors.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { BackendError, initBackend } from '../backend.js';
import { makeConfig } from '../nn/config.js';
import { CheckpointError } from '../errors.js';
import { bfloat16ToFloat32, float32ToHalf, halfToFloat32 } from '../io/float16.js';
import { parseNpy } from '../io/npy.js';
import { paramSpecs } from '../nn/params.js';
import { parseSafetensors } from '../io/safetensors.js';

function safetensors(header: object, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

test('float16: exact values, rounding to nearest even, subnormals, overflow, NaN', () => {
  const xs = Float32Array.from([0, -0, 1, -2, 0.5, 65504, 1e5, -1e5, 2 ** -24, 2 ** -25 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity]);
  const h = float32ToHalf(xs);
  const back = halfToFloat32(h);
  assert.equal(back[2], 1);
  assert.equal(back[3], -2);
  assert.equal(back[5], 65504);
  assert.equal(back[6], Infinity);
  assert.equal(back[7], -Infinity);
  assert.equal(back[8], 2 ** -24); // smallest subnormal
  assert.equal(back[9], 2 ** -24); // 1.5 × 2^-25 rounds up to it
  assert.equal(back[10], 1); // halfway: ties to even (1.0)
  assert.equal(back[11], 1 + 2 ** -9); // halfway: ties to even (upwards)
  assert.ok(Number.isNaN(back[12]));
  assert.equal(back[13], Infinity);
  assert.ok(Object.is(back[1], -0));
  // bfloat16 is the top half of a float32.
  const f = Float32Array.from([1.5, -3.25, 1e30]);
  const u32 = new Uint32Array(f.buffer);
  const bf = Uint16Array.from(u32, (x) => x >>> 16);
  assert.deepEqual([...bfloat16ToFloat32(bf)].slice(0, 2), [1.5, -3.25]);
});

test('safetensors: BF16 and F16 read; bad dtypes, offsets and headers are named', () => {
  const f = Float32Array.from([1.5, -2, 0.25, 8]);
  const bf = Buffer.from(Uint16Array.from(new Uint32Array(f.buffer), (x) => x >>> 16).buffer);
  const h16 = Buffer.from(float32ToHalf(f).buffer);
  const file = safetensors({
    a: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] },
    b: { dtype: 'F16', shape: [4], data_offsets: [8, 16] },
  }, Buffer.concat([bf, h16]));
  const t = parseSafetensors(file, 'x.safetensors');
  assert.deepEqual([...t.get('a')!.data], [...f]);
  assert.deepEqual(t.get('a')!.shape, [2, 2]);
  assert.deepEqual([...t.get('b')!.data], [...f]);
  assert.throws(() => parseSafetensors(safetensors({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)), 'y.safetensors'),
    (e: Error) => e instanceof CheckpointError && /y\.safetensors: tensor w: unsupported dtype "I64"/.test(e.message));
  assert.throws(() => parseSafetensors(safetensors({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8))), /tensor w: data offsets \[0, 8\] do not match F32\[3\]/);
  assert.throws(() => parseSafetensors(safetensors({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8))), /tensor w: file truncated/);
  assert.throws(() => parseSafetensors(Buffer.from([1, 2, 3])), /truncated/);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(5n);
  assert.throws(() => parseSafetensors(Buffer.concat([len, Buffer.from('{oops')])), /corrupt header/);
});

test('npy: float16/float64 read, Fortran order and bad dtypes refused', () => {
  const npy = (descr: string, shape: string, data: Buffer, fortran = 'False') => {
    let header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(header.length, 8);
    return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
  };
  const f64 = parseNpy(npy('<f8', '(2, 1)', Buffer.from(Float64Array.from([0.5, -4]).buffer)));
  assert.deepEqual(f64.shape, [2, 1]);
  assert.deepEqual([...f64.data], [0.5, -4]);
  const f16 = parseNpy(npy('<f2', '(3,)', Buffer.from(float32ToHalf(Float32Array.from([1, 2, 3])).buffer)));
  assert.deepEqual([...f16.data], [1, 2, 3]);
  assert.throws(() => parseNpy(npy('<i4', '(1,)', Buffer.alloc(4)), 'p.npy'), /p\.npy: unsupported dtype <i4/);
  assert.throws(() => parseNpy(npy('<f4', '(2, 2)', Buffer.alloc(16), 'True')), /Fortran/);
  assert.throws(() => parseNpy(npy('<f4', '(4,)', Buffer.alloc(8)), 'q.npy'), /q\.npy: truncated/);
});

test('an unknown TFJS_BACKEND value is a clear error', async () => {
  await assert.rejects(initBackend('gpu'), (e: Error) => e instanceof BackendError && /TFJS_BACKEND must be node, wasm or cpu/.test(e.message));
});

test('the original release\'s params_shapes.json matches our parameter order and shapes', async (t) => {
  const file = path.resolve('..', 'shared', 'gpt1', 'params_shapes.json');
  if (!existsSync(file)) {
    t.skip(`${file} is absent (the GPT-1 release files live outside the project)`);
    return;
  }
  const shapes = JSON.parse(await readFile(file, 'utf8')) as number[][];
  const specs = paramSpecs(makeConfig());
  assert.equal(shapes.length, specs.length);
  // Conv weights are stored [1, in, out]; the loader squeezes the leading 1.
  shapes.forEach((s, i) => assert.deepEqual(s.length === 3 ? s.slice(1) : s, specs[i].shape, specs[i].name));
});
