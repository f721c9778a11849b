// A small reader (and writer, for tests and tools) of NumPy .npy files: the format of the original
// OpenAI GPT-1 release (params_0..9.npy). Little-endian float32/float16/float64, C order.
import { readFile, writeFile } from 'node:fs/promises';
import { CheckpointError } from '../errors.js';
import { halfToFloat32 } from './float16.js';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export function parseNpy(buf: Buffer, file = 'npy'): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new CheckpointError(`${file}: not a .npy file`, file);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) throw new CheckpointError(`${file}: truncated inside the header`, file);
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new CheckpointError(`${file}: corrupt header ${JSON.stringify(header.trim())}`, file);
  if (fortran === 'True') throw new CheckpointError(`${file}: Fortran-order arrays are not supported`, file);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new CheckpointError(`${file}: bad shape (${shapeText})`, file);
  const n = shape.reduce((a, b) => a * b, 1);
  const size = { '<f4': 4, '<f2': 2, '<f8': 8 }[descr];
  if (!size) throw new CheckpointError(`${file}: unsupported dtype ${descr} (little-endian float16/32/64 expected)`, file);
  const body = start + headerLen;
  if (buf.length < body + n * size) {
    throw new CheckpointError(`${file}: truncated (needs ${body + n * size} bytes, has ${buf.length})`, file);
  }
  const bytes = new Uint8Array(n * size);
  bytes.set(buf.subarray(body, body + n * size));
  let data: Float32Array;
  if (size === 4) data = new Float32Array(bytes.buffer);
  else if (size === 2) data = halfToFloat32(new Uint16Array(bytes.buffer));
  else data = Float32Array.from(new Float64Array(bytes.buffer));
  return { shape, data };
}

export async function readNpy(file: string): Promise<NpyArray> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  return parseNpy(buf, file);
}

/** Writes a float32 array as .npy version 1.0. */
export async function writeNpy(file: string, arr: NpyArray): Promise<void> {
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  await writeFile(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength)]));
}
