// The generation worker thread: owns the model (weights loaded once) and runs the continuous
// batcher; the service on the main thread sends requests and receives text and results.
import { parentPort, workerData } from 'node:worker_threads';
import { Batcher } from '../inference/batcher.js';
import { requestPrompt, Sequence } from '../inference/sequence.js';
import { loadRuntime } from '../inference/runtime.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('model/serving/worker.ts must run in a worker thread');
const init = workerData as WorkerInit;
const send = (m: FromWorker) => port.postMessage(m);

try {
  const rt = await loadRuntime(init.modelDir, { backend: init.backend });
  const batcher = new Batcher(rt.engine, init.maxBatch);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'generate') {
      let seq: Sequence;
      try {
        const prompt = requestPrompt(m.prompt, m.tokenTypes, m.replyTokenType);
        seq = new Sequence(rt.tokenizer, rt.config, prompt, m.options, (chunk) => send({ type: 'text', id: m.id, chunk }));
      } catch (err) {
        send({ type: 'error', id: m.id, name: (err as Error).name, message: (err as Error).message });
        return;
      }
      batcher.add({
        id: m.id,
        seq,
        deadline: m.deadline,
        onDone: (result) => send({ type: 'done', id: m.id, result }),
        onError: (err) => send({ type: 'error', id: m.id, name: err.name, message: err.message }),
      });
    } else if (m.type === 'cancel') {
      batcher.cancel(m.id, m.reason);
    } else if (m.type === 'close') {
      batcher.close();
      rt.engine.dispose();
      send({ type: 'closed' });
      port.close();
    }
  });
  send({ type: 'ready', info: rt.info });
} catch (err) {
  send({ type: 'fatal', name: (err as Error).name, message: (err as Error).message });
  port.close();
}
