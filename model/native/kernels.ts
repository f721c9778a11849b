// tfjs kernels for the wasm backend backed by the native matmul addon (index.ts): `BatchMatMul`
// and `_FusedMatMul` are re-registered; cases the addon does not handle (non-float32, batch shapes
// other than equal or one side single, fused activations other than linear/relu, prelu, a bias
// that is not [N], empty tensors) go to the original wasm kernel. Zero copy: the addon reads and
// writes Float32Array views of the wasm heap at the tensors' offsets (views are made after
// makeOutput, since allocating may grow and move the heap).
//
// Installed by backend.ts right after the wasm backend is initialised. The training kernels
// (train/kernels.ts) ask nativeMatMulActive() to decide whether their own transpose-and-split
// BatchMatMul workaround is still needed: with native kernels it is not.
import * as tf from '@tensorflow/tfjs';
import { loadNative, type NativeAddon } from './index.js';

interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap };
type KernelImpl = (args: KernelArgs) => tf.TensorInfo;

let addon: NativeAddon | undefined;
let installed = false;
let enabled = true;
const originals: { BatchMatMul?: KernelImpl; _FusedMatMul?: KernelImpl } = {};
const counts = { native: 0, fallback: 0, packed: 0 };
let packWidth = 1;

/**
 * Both native kernels read B strip by strip; a B used a second time (a weight) is copied once
 * into that order (packB: sequential reads, ~2x the bandwidth of the strided rows of a wide
 * matrix for decode, and no per-call packing for prefill: GEMM ~1.3-2x) and the copy is used
 * from then on — as XNNPACK packs weights on wasm. Keyed by
 * the tensor's data id and layout (reshapes share a data id); dropped when the backend frees that
 * data. Same results packed or not.
 */
const packedB = new WeakMap<object, { layout: string; packed?: Float32Array }>();

const HUGE_PAGE_FLOATS = (2 * 2 ** 20) / 4;

/**
 * A zeroed Float32Array of n floats; from 2 MB up, starting on a 2 MB boundary of a slightly
 * larger buffer that is advised to use transparent huge pages (the addon's hugePages: the
 * streaming kernels cross fewer page boundaries, where the hardware prefetchers stop). The unused slack is never touched, so never resident.
 */
function hugePageArray(n: number): Float32Array {
  if (n < HUGE_PAGE_FLOATS || !addon) return new Float32Array(n);
  const buf = new Float32Array(n + HUGE_PAGE_FLOATS);
  const first = addon.hugePages(buf);
  return buf.subarray(first, first + n);
}

/**
 * packB's copy of the B with this data id in this layout: made on its second use (`now`: on
 * this one), undefined before that. `view` gives the unpacked data when the copy is made.
 */
function packedCopy(dataId: object, view: () => Float32Array, K: number, N: number, transB: boolean, now: boolean): Float32Array | undefined {
  const layout = `${K},${N},${transB ? 1 : 0}`;
  let entry = packedB.get(dataId);
  if (!entry || entry.layout !== layout) {
    entry = { layout };
    packedB.set(dataId, entry);
    if (!now) return undefined;
  }
  if (!entry.packed) {
    entry.packed = hugePageArray(K * Math.ceil(N / packWidth) * packWidth);
    addon!.packB(view(), entry.packed, K, N, transB ? 1 : 0);
    counts.packed++;
  }
  return entry.packed;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

interface Plan {
  batch: number;
  M: number;
  K: number;
  N: number;
  strideA: number;
  strideB: number;
  outShape: number[];
}

/** How the addon runs a·b, or undefined when it does not handle these inputs. */
function plan(a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): Plan | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const M = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== Kb || M === 0 || N === 0 || K === 0) return undefined;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const rank = Math.max(outerA.length, outerB.length);
  const pad = (s: number[]) => [...Array<number>(rank - s.length).fill(1), ...s];
  const pa = pad(outerA);
  const pb = pad(outerB);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  if (batchA === 0 || batchB === 0) return undefined;
  // Supported: equal batch shapes, or one side a single matrix (any number of unit dims).
  let outer: number[];
  if (batchA === 1 && batchB === 1) outer = pa.map((s, i) => Math.max(s, pb[i]));
  else if (batchA === 1) outer = pb;
  else if (batchB === 1) outer = pa;
  else if (pa.every((s, i) => s === pb[i])) outer = pa;
  else return undefined;
  return { batch: sizeOf(outer), M, K, N, strideA: batchA === 1 ? 0 : M * K, strideB: batchB === 1 ? 0 : K * N, outShape: [...outer, M, N] };
}

function heapView(backend: WasmBackendLike, t: tf.TensorInfo, heap: ArrayBuffer): Float32Array {
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  return new Float32Array(heap, offset, sizeOf(t.shape));
}

function run(backend: WasmBackendLike, a: tf.TensorInfo, b: tf.TensorInfo, p: Plan, transA: boolean, transB: boolean,
  bias: tf.TensorInfo | undefined, act: number): tf.TensorInfo {
  const out = backend.makeOutput(p.outShape, 'float32');
  // The heap may have grown (and moved) in makeOutput: take every view now.
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  const unpacked = heapView(backend, b, heap);
  // Reshapes share a data id: the copy is only for the same layout (K, N, transposeB).
  const copy = p.strideB === 0 ? packedCopy(b.dataId, () => unpacked, p.K, p.N, transB, false) : undefined;
  const bView = copy ?? unpacked;
  const packed = copy ? 1 : 0;
  const t0 = profile ? performance.now() : 0;
  // A one-value bias is broadcast here (tfjs allows it; the wasm kernel would read it as [N]).
  const biasView = !bias ? null : bias.shape[0] === p.N ? heapView(backend, bias, heap) : new Float32Array(p.N).fill(heapView(backend, bias, heap)[0]);
  addon!.matmul(heapView(backend, a, heap), bView, heapView(backend, out, heap), biasView, p.batch, p.M, p.K, p.N, p.strideA, p.strideB, transA ? 1 : 0, transB ? 1 : 0, act, packed);
  counts.native++;
  if (profile) {
    const key = `${p.batch}x[${p.M},${p.K}]x[${p.K},${p.N}]${transA ? ' tA' : ''}${transB ? ' tB' : ''}${packed ? ' packed' : ''}`;
    const e = profile.get(key) ?? { calls: 0, ms: 0 };
    e.calls++;
    e.ms += performance.now() - t0;
    profile.set(key, e);
  }
  return out;
}

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const p = enabled ? plan(a, b, transposeA, transposeB) : undefined;
  if (!p) {
    counts.fallback++;
    return originals.BatchMatMul!(args);
  }
  return run(args.backend as WasmBackendLike, a, b, p, transposeA, transposeB, undefined, 0);
}

function fusedMatMul(args: KernelArgs): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = args.inputs as {
    a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo;
  };
  const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation: string };
  const act = activation === 'linear' ? 0 : activation === 'relu' ? 1 : -1;
  let p = enabled && act >= 0 && !preluActivationWeights ? plan(a, b, transposeA, transposeB) : undefined;
  if (p && bias && (bias.dtype !== 'float32' || bias.shape.length !== 1 || (bias.shape[0] !== p.N && bias.shape[0] !== 1))) p = undefined;
  if (!p) {
    counts.fallback++;
    return originals._FusedMatMul!(args);
  }
  return run(args.backend as WasmBackendLike, a, b, p, transposeA, transposeB, bias ?? undefined, act);
}

/**
 * Re-registers the wasm matmul kernels on the addon when it is available (idempotent; call after
 * the wasm backend is initialised). Returns whether native kernels are installed.
 */
export function installNativeKernels(): boolean {
  if (installed) return true;
  addon = loadNative();
  if (!addon) return false;
  const bmm = tf.getKernel('BatchMatMul', 'wasm');
  const fused = tf.getKernel('_FusedMatMul', 'wasm');
  if (!bmm || !fused) return false;
  ({ packWidth } = addon.info());
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike | undefined;
  if (!backend) return false;
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean) => {
    const freed = dispose(dataId, force);
    if (freed) packedB.delete(dataId);
    return freed;
  };
  originals.BatchMatMul = bmm.kernelFunc as unknown as KernelImpl;
  originals._FusedMatMul = fused.kernelFunc as unknown as KernelImpl;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...bmm, kernelFunc: batchMatMul as unknown as tf.KernelFunc });
  tf.unregisterKernel('_FusedMatMul', 'wasm');
  tf.registerKernel({ ...fused, kernelFunc: fusedMatMul as unknown as tf.KernelFunc });
  for (const [kernelName, f] of [[ADD_LAYER_NORM, addLayerNormKernel], [MATMUL_GELU, matMulGeluKernel], [DECODE_ATTENTION, decodeAttentionKernel]] as const) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: f as unknown as tf.KernelFunc });
  }
  installed = true;
  return true;
}

/** True when wasm matmuls currently run on the addon (the one question train/kernels.ts asks). */
export function nativeMatMulActive(): boolean {
  return installed && enabled;
}

/** Runs `fn` with the original wasm matmul kernels (tests and comparisons). */
export function withoutNative<T>(fn: () => T): T {
  const was = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = was;
  }
}

/** Matmuls run natively / handed to the original kernels, B matrices packed (tests, diagnostics). */
export function nativeCounts(): { native: number; fallback: number; packed: number } {
  return { ...counts };
}

// ---------------------------------------------------------------------------------------------
// Fused inference ops (the engine's decode step and prefill use them when nativeOpsActive()):
// custom wasm-backend kernels, inference only (no gradients). Each replaces dozens of small tfjs
// ops (2-3 us of dispatch each) with one native call on the tensors' heap memory.

const ADD_LAYER_NORM = 'NemoAddLayerNorm';
const MATMUL_GELU = 'NemoMatMulGelu';
const DECODE_ATTENTION = 'NemoDecodeAttention';

function addLayerNormKernel(args: KernelArgs): tf.TensorInfo {
  const { x, y, yBias, gain, beta } = args.inputs as Record<string, tf.TensorInfo>;
  const { eps } = args.attrs as { eps: number };
  const backend = args.backend as WasmBackendLike;
  const [rows, C] = x.shape;
  const out = backend.makeOutput([rows, C], 'float32');
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  addon!.addLayerNorm(heapView(backend, x, heap), heapView(backend, y, heap), yBias ? heapView(backend, yBias, heap) : null,
    heapView(backend, gain, heap), heapView(backend, beta, heap), heapView(backend, out, heap), rows, C, eps);
  return out;
}

function matMulGeluKernel(args: KernelArgs): tf.TensorInfo {
  const { a, b, bias } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias: tf.TensorInfo };
  const p = plan(a, b, false, false);
  if (!p || bias.shape.length !== 1 || bias.shape[0] !== p.N) throw new Error(`${MATMUL_GELU}: unsupported shapes ${a.shape} x ${b.shape} + ${bias.shape}`);
  return run(args.backend as WasmBackendLike, a, b, p, false, false, bias, 2);
}

function decodeAttentionKernel(args: KernelArgs): tf.TensorInfo {
  const { qkv } = args.inputs as { qkv: tf.TensorInfo };
  const { k, v, lengths, heads, scale, counts } = args.attrs as unknown as {
    k: Float32Array[]; v: Float32Array[]; lengths: number[]; heads: number; scale: number; counts?: number[];
  };
  const backend = args.backend as WasmBackendLike;
  const [rows, C3] = qkv.shape;
  const out = backend.makeOutput([rows, C3 / 3], 'float32');
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  addon!.decodeAttention(heapView(backend, qkv, heap), heapView(backend, out, heap), k, v, lengths, C3 / 3, heads, scale, counts);
  return out;
}

/** The addon while the native kernels are installed and enabled (the engine's direct path), else undefined. */
export function nativeAddon(): NativeAddon | undefined {
  return installed && enabled ? addon : undefined;
}

/**
 * A float32 tensor's data on the wasm heap, as a view: valid until the heap grows (any tfjs
 * allocation may grow it), so take views per call, after allocating.
 */
export function tensorView(t: tf.Tensor): Float32Array {
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike;
  return heapView(backend, t, backend.wasm.HEAPU8.buffer as ArrayBuffer);
}

/** packB's copy of a weight [K, N] (made now if need be; shared with the matmul kernels, freed with the tensor's data). */
export function packedWeight(w: tf.Tensor2D): Float32Array {
  return packedCopy(w.dataId, () => tensorView(w), w.shape[0], w.shape[1], false, true)!;
}

/** True when the fused ops below can be used (native kernels installed and enabled, wasm active). */
export function nativeOpsActive(): boolean {
  return installed && enabled && tf.getBackend() === 'wasm';
}

/** LayerNorm(x + y + yBias) · gain + beta over the rows of [M, C] (post-LN residual), one native call. */
export function addLayerNorm(x: tf.Tensor2D, y: tf.Tensor2D, yBias: tf.Tensor1D | undefined, gain: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { x, y, gain, beta };
  if (yBias) inputs.yBias = yBias;
  return tf.engine().runKernel(ADD_LAYER_NORM, inputs, { eps }) as tf.Tensor2D;
}

/** GELU(x · w + bias) (tanh form) with x [M, K], w [K, N], bias [N]: the matmul applies it to its output. */
export function matMulGelu(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  return tf.engine().runKernel(MATMUL_GELU, { a: x, b: w, bias }, {}) as tf.Tensor2D;
}

/**
 * Attention for several sequences in one call: qkv holds counts[i] (default 1: a decode step)
 * consecutive q | k | v rows per sequence. k[i] / v[i] are sequence i's cache buffers, head-major
 * [H][capacity][D] (each head's rows contiguous; capacity = length / C ≥ lengths[i] + counts[i]).
 * Its new k and v rows are first written at rows lengths[i].. of every head; then, per head, its
 * row j attends to rows 0..lengths[i] + j with softmax(scale · q·k) (causal). Returns [rows, C].
 * Threads split (sequence, head, 16 rows).
 */
export function decodeAttention(qkv: tf.Tensor2D, k: Float32Array[], v: Float32Array[], lengths: number[], heads: number, scale: number, counts?: number[]): tf.Tensor2D {
  return tf.engine().runKernel(DECODE_ATTENTION, { qkv }, { k, v, lengths, heads, scale, counts } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

let profile: Map<string, { calls: number; ms: number }> | undefined;

/** Starts (or restarts) timing native matmuls by shape; returns the table so far and stops when `on` is false. */
export function nativeProfile(on: boolean): Map<string, { calls: number; ms: number }> {
  const was = profile ?? new Map<string, { calls: number; ms: number }>();
  profile = on ? new Map() : undefined;
  return was;
}

/** Resizes the addon's thread pool (tests; normally NEMO_NATIVE_THREADS). */
export function setNativeThreads(n: number): void {
  addon?.setThreads(n);
}
