// tfjs's cpu backend prints "install our node backend" at its first use in every process (each
// test file, each CLI run). The backend is chosen on purpose (model/backend.ts: tfjs-node when
// installed, else wasm with the native matmuls, else cpu), so the advice is noise. Imported for its
// effect by model/backend.ts and preloaded by the test runner.
import * as tf from '@tensorflow/tfjs';

const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
