// Picks the tfjs backend at run time: tfjs-node (native; optional — its install downloads
// libtensorflow, so it is not in package.json: `npm install @tensorflow/tfjs-node` on machines with
// internet), else wasm (XNNPACK, SIMD; one thread under Node), else the plain-JS cpu backend.
// TFJS_BACKEND=node|wasm|cpu forces one. On wasm, matmuls run on the native addon
// (model/native) when it is built, unless NEMO_NATIVE=0.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { installNativeKernels } from './native/kernels.js';
import './tfjs-quiet.js';

export type BackendName = 'node' | 'wasm' | 'cpu';

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

let current: Promise<string> | undefined;
let currentWanted: string | undefined;

async function tryNode(): Promise<boolean> {
  try {
    // A variable specifier keeps TypeScript from requiring the (optional) package's types.
    const spec = '@tensorflow/tfjs-node';
    await import(spec);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // Under Node the .wasm files must be given as a path: they live in the package's dist folder.
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(`${dist}${path.sep}`);
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function select(wanted: string | undefined): Promise<string> {
  const order: BackendName[] = wanted ? [wanted as BackendName] : ['node', 'wasm', 'cpu'];
  for (const name of order) {
    const ok = name === 'node' ? await tryNode() : name === 'wasm' ? await tryWasm() : await tf.setBackend('cpu');
    if (ok) {
      await tf.ready();
      if (tf.getBackend() === 'wasm') installNativeKernels();
      return tf.getBackend();
    }
  }
  if (wanted) {
    const hint = wanted === 'node' ? ' (install it with `npm install @tensorflow/tfjs-node`; needs internet)' : '';
    throw new BackendError(`TFJS_BACKEND=${wanted}: backend could not be initialised${hint}`);
  }
  throw new BackendError('no tfjs backend could be initialised');
}

/**
 * Initialises the backend once per process (later calls return the same promise) and returns its
 * tfjs name ('tensorflow', 'wasm' or 'cpu'). `wanted` defaults to $TFJS_BACKEND.
 */
export function initBackend(wanted: string | undefined = process.env.TFJS_BACKEND || undefined): Promise<string> {
  if (wanted !== undefined && !['node', 'wasm', 'cpu'].includes(wanted)) {
    return Promise.reject(new BackendError(`TFJS_BACKEND must be node, wasm or cpu (got ${JSON.stringify(wanted)})`));
  }
  if (current && currentWanted === wanted) return current;
  currentWanted = wanted;
  current = select(wanted);
  return current;
}
