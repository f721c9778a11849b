// A small seeded PRNG (mulberry32) so that initialisation and sampling are reproducible across
// runs and machines; Math.random cannot be seeded.

export class Rng {
  private state: number;

  constructor(seed: number) {
    // Mix the seed so that nearby seeds (1, 2, 3) give unrelated streams.
    let s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b) >>> 0;
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0;
    this.state = (s ^ (s >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.next();
    while (u <= 1e-12) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fills `out` with N(0, std²) samples. */
  fillNormal(out: Float32Array, std: number): Float32Array {
    // Both Box-Muller outputs are used: halves the cost for GPT-1's 117 M parameters.
    let i = 0;
    while (i < out.length) {
      let u = this.next();
      while (u <= 1e-12) u = this.next();
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      const a = 2 * Math.PI * this.next();
      out[i++] = r * Math.cos(a);
      if (i < out.length) out[i++] = r * Math.sin(a);
    }
    return out;
  }
}
