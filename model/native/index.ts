// The optional native matmul addon (model/native/src, built by `npm run build:native` or the
// root postinstall). loadNative() returns it, with its thread pool sized, or undefined when it is
// not built or disabled; nativeStatus() says which and why, in one line, for `model info` and logs.
//   NEMO_NATIVE=0           do not load it (wasm kernels only)
//   NEMO_NATIVE_THREADS=n   threads of its pool (default: os.availableParallelism())
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  /**
   * out[batch][M][N] = act(op(a) · op(b) + bias); a/b entries `strideA`/`strideB` floats apart
   * (0: one shared matrix). act 0 = linear, 1 = relu, 2 = tanh-GELU. packedB 1: b is packB's copy (one B,
   * any M). Synchronous; uses the pool.
   */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, bias: Float32Array | null, batch: number, M: number, K: number, N: number,
    strideA: number, strideB: number, transA: number, transB: number, act: number, packedB: number): void;
  /** out = LayerNorm(x + y + yBias) · gain + beta over `rows` rows of C floats (yBias [C] or null). */
  addLayerNorm(x: Float32Array, y: Float32Array, yBias: Float32Array | null, gain: Float32Array, beta: Float32Array, out: Float32Array,
    rows: number, C: number, eps: number): void;
  /**
   * qkv holds counts[i] (default 1) rows [3C] per sequence; k[i] / v[i] are head-major [H][capacity][D]
   * (capacity = length / C). Writes rows lengths[i].. of every head from sequence i's k and v, then
   * its row j of out (C floats) = each head's softmax(scale · q·K) · V over rows 0..lengths[i] + j.
   */
  decodeAttention(qkv: Float32Array, out: Float32Array, k: Float32Array[], v: Float32Array[], lengths: number[], C: number, H: number, scale: number,
    counts?: number[]): void;
  /** `out` (K · N rounded up to packWidth columns) = one B ([K, N], or [N, K] when transB) in the kernels' strip layout. */
  packB(b: Float32Array, out: Float32Array, K: number, N: number, transB: number): void;
  /**
   * Indices of the k largest values into `out`, largest first, equal values by lower index (as
   * sampling's topIndices); returns min(k, length), or -1 when `values` holds a NaN or k > 256.
   */
  topK(values: Float32Array, k: number, out: Int32Array): number;
  /**
   * The index of the array's first element on a 2 MB boundary (0 off Linux); from there on the
   * array is advised to use transparent huge pages. Call before anything writes it.
   */
  hugePages(array: Float32Array): number;
  setThreads(n: number): void;
  /**
   * Machine probes on the pool's threads (benchmarks): the multiply-add peak (best of three rounds of
   * independent vector FMAs) and the rate of reading `readBytes` (1 MB to 16 GB, allocated and
   * touched first). Takes ~0.1-1 s.
   */
  probe(readBytes: number): { fmaGflops: number; readGBs: number };
  /** gemvMaxRows: matmuls with at most this many rows stream B; packWidth: packB's strip width */
  info(): { threads: number; isa: string; gemvMaxRows: number; packWidth: number };
}

export interface NativeStatus {
  active: boolean;
  threads?: number;
  isa?: string;
  /** one line: what is used and why */
  reason: string;
}

export const ADDON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build', 'Release', 'nemo_native.node');

let addon: NativeAddon | undefined;
let status: NativeStatus | undefined;

/** NEMO_NATIVE_THREADS, else the machine's available parallelism. */
export function nativeThreadsSetting(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.NEMO_NATIVE_THREADS;
  if (raw === undefined || raw === '') return os.availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`NEMO_NATIVE_THREADS must be an integer from 1 to 256 (got ${JSON.stringify(raw)})`);
  return n;
}

/** The addon (loaded once per thread), or undefined; see nativeStatus() for why. */
export function loadNative(): NativeAddon | undefined {
  if (status) return addon;
  if (process.env.NEMO_NATIVE === '0') {
    status = { active: false, reason: 'native matmul off (NEMO_NATIVE=0): wasm kernels' };
    return undefined;
  }
  if (!existsSync(ADDON_PATH)) {
    status = { active: false, reason: 'native matmul not built (run `npm run build:native`): wasm kernels' };
    return undefined;
  }
  const threads = nativeThreadsSetting();
  try {
    const a = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    a.setThreads(threads);
    addon = a;
    const info = a.info();
    status = { active: true, threads: info.threads, isa: info.isa, reason: `native matmul on (${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'})` };
  } catch (err) {
    status = { active: false, reason: `native matmul failed to load (${(err as Error).message.split('\n')[0]}): wasm kernels` };
  }
  return addon;
}

export function nativeStatus(): NativeStatus {
  loadNative();
  return status!;
}
