// The tensor-parallel engine: shard 0 runs here, shards 1..n-1 in worker threads (shard-worker.ts),
// each with its part of every weight matrix (shard.ts). Every call is posted to the peers first,
// then computed here; the shards meet at shared-memory barriers inside each layer. On wasm (one
// thread per backend instance under Node) this is how decoding uses more than one core.
import type { Worker } from 'node:worker_threads';
import type { GptConfig } from './nn/config.js';
import { Engine, type InferenceEngine, type KvCache } from './inference/engine.js';
import { checkShard, loadShard, vocabRange } from './shard.js';
import { readCheckpoint } from './io/checkpoint.js';
import { readConfigFile } from './nn/config.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { createShardMemory, SharedMemoryComm } from './shard-comm.js';
import type { FromShard, ShardWorkerInit, ToShard } from './shard-worker.js';
import { startTsWorker } from './serving/ts-worker.js';

/** Most rows one batched step may have (sizes the shared buffers). */
export const MAX_BATCH_ROWS = 64;

/**
 * Threads to use by default: $MODEL_THREADS, else 1. Two threads roughly halve the time per token
 * on a machine with two free cores (see README, Performance), but lose when the cores are busy
 * with other work, so it is opt-in.
 */
export function defaultThreads(): number {
  const env = Number(process.env.MODEL_THREADS);
  return Number.isInteger(env) && env >= 1 && env <= 4 ? env : 1;
}

export class ParallelEngine implements InferenceEngine {
  private nextId = 1;
  private broken: Error | null = null;

  private constructor(
    private readonly local: Engine,
    private readonly peers: Worker[],
  ) {
    for (const w of peers) {
      w.on('message', (m: FromShard) => {
        if (m.type === 'error') this.broken = new Error(`model thread failed: ${m.message}`);
      });
      w.on('error', (err) => (this.broken = new Error(`model thread crashed: ${err.message}`)));
    }
  }

  get config(): GptConfig {
    return this.local.config;
  }

  /** Loads `modelDir` split over `threads` threads (this one included). */
  static async create(modelDir: string, threads: number, backend?: string): Promise<ParallelEngine> {
    // The config sizes the shared memory; the peers then load their shards while this one loads.
    const cfgFile = path.join(modelDir, 'config.json');
    const config = existsSync(cfgFile) ? await readConfigFile(cfgFile) : (await readCheckpoint(modelDir)).config;
    checkShard(config, { index: 0, count: threads });
    const [v0, v1] = vocabRange(config, { index: 0, count: threads });
    const maxFloats = Math.max(config.nPositions * config.nEmbd, MAX_BATCH_ROWS * (v1 - v0 + 1));
    const sab = createShardMemory(threads, maxFloats);
    const comm = new SharedMemoryComm(sab, 0, threads);
    const peers: Worker[] = [];
    let tensors: Map<string, tf.Tensor> | undefined;
    try {
      for (let i = 1; i < threads; i++) {
        const init: ShardWorkerInit = { modelDir, index: i, count: threads, sab, backend };
        peers.push(startTsWorker(new URL('./shard-worker.ts', import.meta.url), init));
      }
      const ready = Promise.all(peers.map((w) => new Promise<void>((resolve, reject) => {
        w.once('message', (m: FromShard) => (m.type === 'ready' ? resolve() : reject(new Error(m.type === 'error' ? m.message : 'unexpected message'))));
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`model thread exited during start-up (code ${code})`)));
      })));
      ready.catch(() => {}); // observed below; avoid an unhandled rejection while shard 0 loads
      tensors = (await loadShard(modelDir, { index: 0, count: threads })).tensors;
      await ready;
    } catch (err) {
      if (tensors) for (const t of tensors.values()) t.dispose();
      await Promise.all(peers.map((w) => w.terminate()));
      throw err;
    }
    for (const w of peers) w.removeAllListeners();
    return new ParallelEngine(new Engine(config, tensors, { index: 0, count: threads }, comm), peers);
  }

  private post(m: ToShard): void {
    if (this.broken) throw this.broken;
    for (const w of this.peers) w.postMessage(m);
  }

  prefill(ids: number[]): { cache: KvCache; logits: Float32Array } {
    const id = this.nextId++;
    // Validate before the peers start, so a bad request cannot leave them waiting at a barrier.
    this.local.validatePrefill(ids);
    this.post({ op: 'prefill', id, ids });
    return this.local.prefill(ids, id);
  }

  /** One prefill per prompt (the shards' protocol has no batched prefill). */
  prefillMany(prompts: number[][]): Array<{ cache: KvCache; logits: Float32Array }> {
    const out: Array<{ cache: KvCache; logits: Float32Array }> = [];
    try {
      for (const ids of prompts) out.push(this.prefill(ids));
    } catch (err) {
      for (const r of out) this.release(r.cache);
      throw err;
    }
    return out;
  }

  extend(cache: KvCache, ids: number[]): Float32Array {
    this.local.validatePrefill(ids, cache);
    this.post({ op: 'extend', id: cache.id, ids });
    return this.local.extend(cache, ids);
  }

  /** (No `into`: the logits come from the shards.) */
  step(items: Array<{ cache: KvCache; token: number }>): Float32Array[] {
    if (items.length > MAX_BATCH_ROWS) throw new Error(`at most ${MAX_BATCH_ROWS} sequences per step`);
    this.local.validateStep(items);
    this.post({ op: 'step', items: items.map((it) => ({ id: it.cache.id, token: it.token })) });
    return this.local.step(items);
  }

  release(cache: KvCache): void {
    if (!this.broken) this.post({ op: 'release', id: cache.id });
    this.local.release(cache);
  }

  warmUp(): void {
    const { cache } = this.prefill([0, 0]);
    this.step([{ cache, token: 0 }]);
    this.release(cache);
  }

  dispose(): void {
    try {
      this.post({ op: 'close' });
    } catch {
      // broken group: terminate below
    }
    for (const w of this.peers) setTimeout(() => void w.terminate(), 2000).unref();
    this.local.dispose();
  }
}
