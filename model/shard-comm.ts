// Exchanging partial results between the threads of a tensor-parallel engine through shared
// memory: a counter per shard (Atomics.wait/notify) and two alternating data buffers per shard,
// so a shard can write barrier k+1's data while its peer may still read barrier k's.
// Every engine call runs the same sequence of barriers on every shard.

export interface ShardComm {
  /** Element-wise sum of `x` over all shards. */
  allReduce(x: Float32Array): Float32Array;
  /**
   * Row-wise concatenation of every shard's [rows, width_s] block: shard 0 gets [rows, Σ width]
   * back, the others null.
   */
  gather(x: Float32Array, rows: number): Float32Array | null;
  /** Marks the group broken (wakes peers, which then throw). */
  fail(message: string): void;
}

const HEADER_INTS = 8; // counters of up to 4 shards, error flag, spare
const ERROR = 4;

export class ShardBrokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardBrokenError';
  }
}

/** Shared memory for `count` shards exchanging up to `maxFloats` floats per barrier. */
export function createShardMemory(count: number, maxFloats: number): SharedArrayBuffer {
  if (count > 4) throw new Error('at most 4 shards');
  return new SharedArrayBuffer(HEADER_INTS * 4 + 2 * count * maxFloats * 4);
}

export class SharedMemoryComm implements ShardComm {
  private readonly flags: Int32Array;
  private readonly data: Float32Array;
  private readonly maxFloats: number;
  private k = 0;

  constructor(
    sab: SharedArrayBuffer,
    private readonly index: number,
    private readonly count: number,
    /** How long a barrier waits for a peer before giving up (a crashed peer must not hang us). */
    private readonly timeoutMs = 600_000,
  ) {
    this.flags = new Int32Array(sab, 0, HEADER_INTS);
    this.data = new Float32Array(sab, HEADER_INTS * 4);
    this.maxFloats = this.data.length / (2 * count);
  }

  private slot(shard: number, buf: number, n: number): Float32Array {
    const at = (shard * 2 + buf) * this.maxFloats;
    return this.data.subarray(at, at + n);
  }

  private publish(x: Float32Array | null): number {
    const k = ++this.k;
    if (x) {
      if (x.length > this.maxFloats) throw new ShardBrokenError(`exchange of ${x.length} floats exceeds the shared buffer (${this.maxFloats})`);
      this.slot(this.index, k % 2, x.length).set(x);
    }
    Atomics.store(this.flags, this.index, k);
    Atomics.notify(this.flags, this.index);
    return k;
  }

  private await(shard: number, k: number): void {
    const start = Date.now();
    for (;;) {
      if (Atomics.load(this.flags, ERROR) !== 0) throw new ShardBrokenError('a peer thread of the model failed');
      const v = Atomics.load(this.flags, shard);
      if (v >= k) return;
      Atomics.wait(this.flags, shard, v, 200);
      if (Date.now() - start > this.timeoutMs) {
        this.fail('timeout');
        throw new ShardBrokenError(`peer thread ${shard} did not answer within ${this.timeoutMs} ms`);
      }
    }
  }

  allReduce(x: Float32Array): Float32Array {
    const k = this.publish(x);
    const out = Float32Array.from(x);
    for (let s = 0; s < this.count; s++) {
      if (s === this.index) continue;
      this.await(s, k);
      const other = this.slot(s, k % 2, x.length);
      for (let i = 0; i < out.length; i++) out[i] += other[i];
    }
    return out;
  }

  gather(x: Float32Array, rows: number): Float32Array | null {
    if (this.index !== 0) {
      // Publish, and also record the width so shard 0 knows how much to read.
      const withWidth = new Float32Array(x.length + 1);
      withWidth[0] = x.length / rows;
      withWidth.set(x, 1);
      this.publish(withWidth);
      return null;
    }
    const k = this.publish(null);
    const parts: Array<{ data: Float32Array; width: number }> = [{ data: x, width: x.length / rows }];
    for (let s = 1; s < this.count; s++) {
      this.await(s, k);
      const width = this.slot(s, k % 2, 1)[0];
      parts.push({ data: this.slot(s, k % 2, 1 + rows * width).subarray(1), width });
    }
    const total = parts.reduce((a, p) => a + p.width, 0);
    const out = new Float32Array(rows * total);
    for (let r = 0; r < rows; r++) {
      let at = r * total;
      for (const p of parts) {
        out.set(p.data.subarray(r * p.width, (r + 1) * p.width), at);
        at += p.width;
      }
    }
    return out;
  }

  fail(_message: string): void {
    Atomics.store(this.flags, ERROR, 1);
    for (let s = 0; s < this.count; s++) Atomics.notify(this.flags, s);
  }
}
