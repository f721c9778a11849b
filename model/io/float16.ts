// IEEE half and bfloat16 <-> float32 conversion for checkpoints (tfjs has no float16 tensors).

let halfTable: Float32Array | undefined;

/** All 65536 half values as float32: conversion becomes one lookup per element. */
function table(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m ? NaN : Infinity;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    halfTable[h] = s * v;
  }
  return halfTable;
}

export function halfToFloat32(src: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return new Float32Array(bits.buffer);
}

/** float32 → half, round to nearest even; overflow becomes ±Infinity. */
export function float32ToHalf(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      let m = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      if (rest > half || (rest === half && m & 1)) m++;
      out[i] = sign | m;
      continue;
    }
    let m = mant >>> 13;
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
      m++;
      if (m === 0x400) {
        m = 0;
        e++;
        if (e >= 31) {
          out[i] = sign | 0x7c00;
          continue;
        }
      }
    }
    out[i] = sign | (e << 10) | m;
  }
  return out;
}
