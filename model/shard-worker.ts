// A peer thread of the tensor-parallel engine (parallel.ts): holds one shard of the weights and
// mirrors every prefill/extend/step/release of shard 0, exchanging partial sums through shared memory.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from './backend.js';
import { Engine, type KvCache } from './inference/engine.js';
import { loadShard } from './shard.js';
import { SharedMemoryComm } from './shard-comm.js';

export interface ShardWorkerInit {
  modelDir: string;
  index: number;
  count: number;
  sab: SharedArrayBuffer;
  backend?: string;
}

export type ToShard =
  | { op: 'prefill'; id: number; ids: number[] }
  | { op: 'extend'; id: number; ids: number[] }
  | { op: 'step'; items: Array<{ id: number; token: number }> }
  | { op: 'release'; id: number }
  | { op: 'close' };

export type FromShard = { type: 'ready' } | { type: 'error'; message: string } | { type: 'closed' };

const port = parentPort;
if (!port) throw new Error('model/shard-worker.ts must run in a worker thread');
const init = workerData as ShardWorkerInit;
const comm = new SharedMemoryComm(init.sab, init.index, init.count);
const send = (m: FromShard) => port.postMessage(m);

try {
  await initBackend(init.backend);
  const { config, tensors } = await loadShard(init.modelDir, { index: init.index, count: init.count });
  const engine = new Engine(config, tensors, { index: init.index, count: init.count }, comm);
  const caches = new Map<number, KvCache>();
  port.on('message', (m: ToShard) => {
    try {
      if (m.op === 'prefill') {
        caches.set(m.id, engine.prefill(m.ids, m.id).cache);
      } else if (m.op === 'extend') {
        const cache = caches.get(m.id);
        if (!cache) throw new Error(`unknown sequence ${m.id}`);
        engine.extend(cache, m.ids);
      } else if (m.op === 'step') {
        engine.step(m.items.map((it) => {
          const cache = caches.get(it.id);
          if (!cache) throw new Error(`unknown sequence ${it.id}`);
          return { cache, token: it.token };
        }));
      } else if (m.op === 'release') {
        const c = caches.get(m.id);
        if (c) engine.release(c);
        caches.delete(m.id);
      } else if (m.op === 'close') {
        for (const c of caches.values()) engine.release(c);
        engine.dispose();
        send({ type: 'closed' });
        port.close();
      }
    } catch (err) {
      comm.fail((err as Error).message);
      send({ type: 'error', message: (err as Error).message });
    }
  });
  send({ type: 'ready' });
} catch (err) {
  comm.fail((err as Error).message);
  send({ type: 'error', message: (err as Error).message });
  port.close();
}
