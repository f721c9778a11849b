// What training needs from tfjs that the wasm backend lacks or does slowly. Installed once per
// process by the trainer; inference never depends on it (it only adds a missing kernel and changes
// how GRADIENTS are computed, never a forward result).
//
// 1. `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the embedding lookup) has no wasm
//    kernel: training any embedding fails with "Kernel 'UnsortedSegmentSum' not registered".
//    We register a small JS kernel that reads and writes the wasm heap directly.
// 2. Batched (3-D/4-D) and transposed matmuls miss XNNPACK on wasm and run in a scalar loop
//    (~1.4 GFLOP/s here vs ~20 for a plain 2-D one): attention's q·kᵀ and p·v were 30 % of a
//    training step. We wrap the wasm BatchMatMul kernel: transposed operands are transposed once
//    in JS, then every batch entry runs as a plain 2-D matmul on zero-copy views of the heap.
// 3. tfjs copies every tensor it saves for the backward pass (an Identity kernel: ~450 copies,
//    ~6 % of a step). Tensors are immutable, so the copy can share the buffer, as Reshape does.
// 4. tfjs computes matmul gradients with transposed matmuls (`matMul(dy, b, false, true)`), which
//    on wasm miss XNNPACK and run in a scalar loop (measured 6.7x slower training). We re-register
//    the BatchMatMul gradient so that it transposes explicitly and multiplies plainly.
// When the native matmul kernels are active (model/native: they handle transposes and batches
// themselves), 2. is not installed and 4. passes the transpose flags instead of transposing.
import * as tf from '@tensorflow/tfjs';
import { nativeMatMulActive } from '../native/kernels.js';

interface WasmModuleLike {
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  tfjs: { disposeData(id: number): void };
}

interface WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number }; delete(dataId: object): boolean };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * out[segmentIds[i], :] += x[i, :] for every i; ids outside [0, numSegments) are dropped (as in
 * TensorFlow). x's leading dimensions are segmentIds' shape.
 */
function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = args.attrs.numSegments as number;
  if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum (wasm, JS kernel): only float32 is supported, got ${x.dtype}`);
  const n = sizeOf(segmentIds.shape);
  const inner = n === 0 ? 0 : sizeOf(x.shape) / n;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, 'float32');
  // Views are taken after makeOutput: allocating may grow (and move) the wasm heap.
  const o = backend.typedArrayFromHeap(out) as Float32Array;
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const ids = backend.typedArrayFromHeap(segmentIds);
  o.fill(0);
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
}

type MatMulFn = (aId: number, aShape: Uint8Array, aRank: number, bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number) => void;
let wasmMatMul: MatMulFn | undefined;
let originalMatMul: tf.KernelConfig | undefined;

const shapeBytes = (shape: number[]): Uint8Array => new Uint8Array(new Int32Array(shape).buffer);

/** A tensor id for `size` floats already living at `offset` in the heap (no allocation). */
function view(backend: WasmBackendLike, shape: number[], offset: number): tf.TensorInfo {
  return backend.makeOutput(shape, 'float32', offset);
}

/** Forgets a view without freeing its memory (it belongs to another tensor). */
function releaseView(backend: WasmBackendLike, t: tf.TensorInfo): void {
  const { id } = backend.dataIdMap.get(t.dataId);
  backend.dataIdMap.delete(t.dataId);
  backend.wasm.tfjs.disposeData(id); // also drops XNNPACK's packed copy of it
}

/** [batch, rows, cols] → a new heap tensor [batch, cols, rows]. */
function transposeLast2(backend: WasmBackendLike, x: tf.TensorInfo, batch: number, rows: number, cols: number): tf.TensorInfo {
  const out = backend.makeOutput([batch, cols, rows], 'float32');
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  for (let bi = 0; bi < batch; bi++) {
    const base = bi * rows * cols;
    for (let r = 0; r < rows; r++) {
      const srow = base + r * cols;
      for (let c = 0; c < cols; c++) dst[base + c * rows + r] = src[srow + c];
    }
  }
  return out;
}

function batchMatMulWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const ra = a.shape.length;
  const rb = b.shape.length;
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  const plain2d = batchA === 1 && batchB === 1 && !transposeA && !transposeB;
  const sameOuter = ra === rb && a.shape.slice(0, -2).every((s, i) => s === b.shape[i]);
  if (plain2d || a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameOuter || batchB === 1 && rb === 2)) {
    return (originalMatMul!.kernelFunc as unknown as (x: typeof args) => tf.TensorInfo)(args);
  }
  wasmMatMul ??= backend.wasm.cwrap('BatchMatMul', null,
    ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']) as unknown as MatMulFn;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batch = Math.max(batchA, batchB);
  const aMem = transposeA ? transposeLast2(backend, a, batchA, K, M) : a;
  const bMem = transposeB ? transposeLast2(backend, b, batchB, N, K) : b;
  const out = backend.makeOutput([batch, M, N], 'float32');
  const aOff = backend.dataIdMap.get(aMem.dataId).memoryOffset;
  const bOff = backend.dataIdMap.get(bMem.dataId).memoryOffset;
  const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = shapeBytes([1, M, K]);
  const bShape = shapeBytes([1, K, N]);
  const sharedB = batchB === 1 ? view(backend, [1, K, N], bOff) : undefined;
  for (let i = 0; i < batch; i++) {
    const av = view(backend, [1, M, K], aOff + i * M * K * 4);
    const bv = sharedB ?? view(backend, [1, K, N], bOff + i * K * N * 4);
    const ov = view(backend, [1, M, N], oOff + i * M * N * 4);
    const id = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).id;
    wasmMatMul(id(av), aShape, 3, id(bv), bShape, 3, false, false, id(ov));
    releaseView(backend, av);
    if (!sharedB) releaseView(backend, bv);
    releaseView(backend, ov);
  }
  if (sharedB) releaseView(backend, sharedB);
  if (aMem !== a) backend.disposeData(aMem.dataId);
  if (bMem !== b) backend.disposeData(bMem.dataId);
  return { dataId: out.dataId, shape: [...a.shape.slice(0, -2), M, N], dtype: 'float32' };
}

/** Swaps the last two axes (explicitly, so that the following matmul is a plain one). */
function t(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  if (r === 2) return tf.transpose(x);
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

let installed = false;

/** Registers the wasm segment-sum kernel and the faster matmul gradient (idempotent). */
export function installTrainingKernels(): void {
  if (installed) return;
  installed = true;
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc });
  }
  const identity = tf.getKernel('Identity', 'wasm');
  if (identity) {
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel({
      ...identity,
      kernelFunc: ((args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }) => {
        const { x } = args.inputs as { x: tf.TensorInfo };
        if (x.dtype === 'string') return (identity.kernelFunc as unknown as (a: typeof args) => tf.TensorInfo)(args);
        (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      }) as unknown as tf.KernelFunc,
    });
  }
  const native = nativeMatMulActive();
  originalMatMul = tf.getKernel('BatchMatMul', 'wasm');
  if (originalMatMul && !native && process.env.NEMO_TRAIN_PLAIN_MATMUL !== '1') {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({ ...originalMatMul, kernelFunc: batchMatMulWasm as unknown as tf.KernelFunc });
  }
  const original = tf.getGradient('BatchMatMul');
  if (!original) return;
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const d = dy as tf.Tensor;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const sameBatch = a.rank === b.rank && a.shape.slice(0, -2).every((s, i) => s === b.shape[i]);
      if (!sameBatch) return original.gradFunc(dy, saved, attrs);
      if (native) {
        // The same products with transpose flags (free in the native kernel, no copies).
        if (!transposeA && !transposeB) return { a: () => tf.matMul(d, b, false, true), b: () => tf.matMul(a, d, true, false) };
        if (!transposeA && transposeB) return { a: () => tf.matMul(d, b), b: () => tf.matMul(d, a, true, false) };
        if (transposeA && !transposeB) return { a: () => tf.matMul(b, d, false, true), b: () => tf.matMul(a, d) };
        return { a: () => tf.matMul(b, d, true, true), b: () => tf.matMul(d, a, true, true) };
      }
      if (!transposeA && !transposeB) return { a: () => tf.matMul(d, t(b)), b: () => tf.matMul(t(a), d) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(d, b), b: () => tf.matMul(t(d), a) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, t(d)), b: () => tf.matMul(a, d) };
      return { a: () => tf.matMul(t(b), t(d)), b: () => tf.matMul(t(d), t(a)) };
    },
  });
}
