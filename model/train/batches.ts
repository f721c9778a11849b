// Which token windows a training step sees. The training stream is cut into non-overlapping
// windows of context+1 tokens (inputs and next-token targets); each epoch visits all of them in
// a seeded random order. The position (epoch, cursor) is all a checkpoint needs to continue the
// exact same sequence of batches.
import { Rng } from '../rng.js';
import { DataError, type TokenArray } from '../data/shards.js';

export interface DataPosition {
  epoch: number;
  /** Index into the epoch's permutation of the next window to use. */
  cursor: number;
}

export interface Batch {
  /** [batch * context] input ids, row-major */
  inputs: Int32Array;
  /** [batch * context] next-token targets */
  targets: Int32Array;
}

export class WindowSampler {
  readonly windows: number;
  private perm: Uint32Array | undefined;
  private permEpoch = -1;

  constructor(
    private readonly tokens: TokenArray,
    private readonly context: number,
    private readonly seed: number,
    public position: DataPosition = { epoch: 0, cursor: 0 },
  ) {
    this.windows = Math.floor((tokens.length - 1) / context);
    if (this.windows < 1) {
      throw new DataError(
        `the training data has ${tokens.length} tokens; at least context + 1 = ${context + 1} are needed for one example`,
      );
    }
  }

  private permutation(epoch: number): Uint32Array {
    if (this.permEpoch !== epoch || !this.perm) {
      const p = new Uint32Array(this.windows);
      for (let i = 0; i < p.length; i++) p[i] = i;
      // Fisher–Yates with a per-epoch stream: any epoch's order is reproducible on its own.
      const rng = new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
      for (let i = p.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
      this.perm = p;
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** The next `batchSize` windows (crossing into the next epoch when one ends). */
  next(batchSize: number): Batch {
    const T = this.context;
    const inputs = new Int32Array(batchSize * T);
    const targets = new Int32Array(batchSize * T);
    for (let b = 0; b < batchSize; b++) {
      if (this.position.cursor >= this.windows) this.position = { epoch: this.position.epoch + 1, cursor: 0 };
      const w = this.permutation(this.position.epoch)[this.position.cursor];
      this.position = { epoch: this.position.epoch, cursor: this.position.cursor + 1 };
      const start = w * T;
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = this.tokens[start + t];
        targets[b * T + t] = this.tokens[start + t + 1];
      }
    }
    return { inputs, targets };
  }
}

/** Non-overlapping windows of a validation stream, in order, at most `maxWindows` of them. */
export function evalWindows(tokens: TokenArray, context: number, maxWindows = Infinity): Batch[] {
  const n = Math.min(Math.floor((tokens.length - 1) / context), maxWindows);
  const out: Batch[] = [];
  for (let w = 0; w < n; w++) {
    const inputs = new Int32Array(context);
    const targets = new Int32Array(context);
    for (let t = 0; t < context; t++) {
      inputs[t] = tokens[w * context + t];
      targets[t] = tokens[w * context + t + 1];
    }
    out.push({ inputs, targets });
  }
  return out;
}
