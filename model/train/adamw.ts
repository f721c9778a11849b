// Adam with decoupled weight decay (Loshchilov & Hutter; GPT-1's "modified L2 regularization,
// w = 0.01, on all non bias or gain weights"). Written out instead of tf.train.adam because its
// whole state (moments and step) must be saved and restored exactly for bit-identical resume,
// and because the decay must skip biases and LayerNorm gains.
import * as tf from '@tensorflow/tfjs';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** GPT-1's rule: decay matrices (linear weights and both embeddings), not biases or gains (1-D). */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !name.endsWith('.bias');
}

export class AdamW {
  /** Completed updates (bias correction uses step + 1 for the next one). */
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly vars: ReadonlyArray<[string, tf.Variable]>,
    private readonly c: AdamWConfig,
  ) {
    // Unnamed variables: tfjs names must be unique per process, and several runs may share one.
    for (const [name, p] of vars) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Applies one update with learning rate `lr`; `grads` are keyed by parameter name. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.c;
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(beta1, t);
    const bc2 = 1 - Math.pow(beta2, t);
    tf.tidy(() => {
      for (const [name, p] of this.vars) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        let next = tf.sub(p, tf.mul(update, lr));
        // Decoupled decay: shrink the weight itself, outside the adaptive scaling.
        if (weightDecay > 0 && decays(name, p.shape)) next = tf.sub(next, tf.mul(p, lr * weightDecay));
        p.assign(next);
      }
    });
    this.step = t;
  }

  /** Moments as named host arrays (`m.<param>`, `v.<param>`) for a checkpoint. */
  async stateArrays(): Promise<Array<[string, { shape: number[]; data: Float32Array }]>> {
    const out: Array<[string, { shape: number[]; data: Float32Array }]> = [];
    for (const [name] of this.vars) {
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      out.push([`m.${name}`, { shape: m.shape, data: (await m.data()) as Float32Array }]);
      out.push([`v.${name}`, { shape: v.shape, data: (await v.data()) as Float32Array }]);
    }
    return out;
  }

  /** Restores moments saved by stateArrays; throws naming the first missing or misshapen one. */
  loadState(arrays: Map<string, { shape: number[]; data: Float32Array }>, step: number, source: string): void {
    for (const [name] of this.vars) {
      for (const [kind, store] of [['m', this.m], ['v', this.v]] as const) {
        const a = arrays.get(`${kind}.${name}`);
        const target = store.get(name)!;
        if (!a) throw new Error(`${source}: optimizer state ${kind}.${name} is missing`);
        if (a.shape.length !== target.shape.length || a.shape.some((d, i) => d !== target.shape[i])) {
          throw new Error(`${source}: optimizer state ${kind}.${name} has shape [${a.shape}], expected [${target.shape}]`);
        }
        const value = tf.tensor(a.data, a.shape, 'float32');
        target.assign(value);
        value.dispose();
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
