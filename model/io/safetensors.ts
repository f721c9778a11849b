// safetensors reading (F32, F16, BF16) and writing (F32, F16), with errors that name the file and
// the tensor. Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the raw little-endian data (offsets relative to the end of the header).
import { open, rename, type FileHandle } from 'node:fs/promises';
import type { GptConfig } from '../nn/config.js';
import { CheckpointError } from '../errors.js';
import { bfloat16ToFloat32, float32ToHalf, halfToFloat32 } from './float16.js';
import { paramSpecs } from '../nn/params.js';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type WriteDtype = 'F32' | 'F16';

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** absolute byte range in the file */
  start: number;
  end: number;
}

/** Validates a header (JSON object) against the data size; returns entries by name. */
function parseHeader(headerBytes: Buffer, base: number, fileSize: number, file: string): Map<string, SafetensorsEntry> {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CheckpointError(`${file}: corrupt header (${(err as Error).message})`, file);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError(`${file}: corrupt header (not an object)`, file);
  }
  const out = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = raw as HeaderEntry;
    const bad = (why: string) => new CheckpointError(`${file}: tensor ${name}: ${why}`, file, name);
    if (!e || typeof e !== 'object' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) throw bad('corrupt header entry');
    if (!(e.dtype in BYTES)) throw bad(`unsupported dtype ${JSON.stringify(e.dtype)} (F32, F16 or BF16 expected)`);
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`bad shape ${JSON.stringify(e.shape)}`);
    const [begin, end] = e.data_offsets;
    const want = numel(e.shape) * BYTES[e.dtype];
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end - begin !== want) {
      throw bad(`data offsets [${begin}, ${end}] do not match ${e.dtype}[${e.shape}] (${want} bytes)`);
    }
    if (base + end > fileSize) throw bad(`file truncated (needs ${base + end} bytes, has ${fileSize})`);
    out.set(name, { dtype: e.dtype, shape: e.shape, start: base + begin, end: base + end });
  }
  return out;
}

function decode(bytes: Uint8Array, dtype: string): Float32Array {
  // `bytes` is a fresh, aligned buffer of its own.
  if (dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return dtype === 'F16' ? halfToFloat32(u16) : bfloat16ToFloat32(u16);
}

/** An open safetensors file: the validated header now, each tensor's data when asked. */
export interface SafetensorsReader {
  entries: Map<string, SafetensorsEntry>;
  read(name: string): Promise<HostTensor>;
  close(): Promise<void>;
}

/**
 * Opens a safetensors file and validates its header against the file size. Tensors are read one
 * at a time, so loading GPT-1 never holds the whole file in memory next to the model.
 */
export async function openSafetensors(file: string): Promise<SafetensorsReader> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < 8) throw new CheckpointError(`${file}: truncated (only ${size} bytes, no header)`, file);
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (n > MAX_HEADER || n < 2) throw new CheckpointError(`${file}: not a safetensors file (header length ${n})`, file);
    if (8 + n > size) throw new CheckpointError(`${file}: truncated inside the header (${size} bytes)`, file);
    const headerBytes = Buffer.alloc(n);
    await fh.read(headerBytes, 0, n, 8);
    const entries = parseHeader(headerBytes, 8 + n, size, file);
    return {
      entries,
      async read(name: string): Promise<HostTensor> {
        const e = entries.get(name);
        if (!e) throw new CheckpointError(`${file}: missing tensor ${name}`, file, name);
        const bytes = new Uint8Array(e.end - e.start);
        const { bytesRead } = await fh.read(bytes, 0, bytes.length, e.start);
        if (bytesRead !== bytes.length) throw new CheckpointError(`${file}: tensor ${name}: file truncated`, file, name);
        return { shape: e.shape, data: decode(bytes, e.dtype) };
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reads every tensor of a safetensors file as float32. */
export async function readSafetensors(file: string): Promise<Map<string, HostTensor>> {
  const r = await openSafetensors(file);
  try {
    const out = new Map<string, HostTensor>();
    for (const name of r.entries.keys()) out.set(name, await r.read(name));
    return out;
  } finally {
    await r.close();
  }
}

/** Parses a whole safetensors file held in memory. */
export function parseSafetensors(buf: Buffer, file = 'safetensors'): Map<string, HostTensor> {
  if (buf.length < 8) throw new CheckpointError(`${file}: truncated (only ${buf.length} bytes, no header)`, file);
  const n = Number(buf.readBigUInt64LE(0));
  if (n > MAX_HEADER || n < 2) throw new CheckpointError(`${file}: not a safetensors file (header length ${n})`, file);
  if (8 + n > buf.length) throw new CheckpointError(`${file}: truncated inside the header (${buf.length} bytes)`, file);
  const out = new Map<string, HostTensor>();
  for (const [name, e] of parseHeader(buf.subarray(8, 8 + n), 8 + n, buf.length, file)) {
    out.set(name, { shape: e.shape, data: decode(Uint8Array.from(buf.subarray(e.start, e.end)), e.dtype) });
  }
  return out;
}

/** Writes tensors (in the given order) as F32 or F16, atomically (temp file + rename). */
export async function writeSafetensors(
  file: string,
  tensors: Iterable<[string, HostTensor]>,
  dtype: WriteDtype = 'F32',
  metadata: Record<string, string> = { format: 'pt' },
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (t.data.length !== numel(t.shape)) throw new CheckpointError(`${file}: tensor ${name}: data length does not match shape`, file, name);
    const bytes = dtype === 'F32'
      ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      : new Uint8Array(float32ToHalf(t.data).buffer);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(len);
    await fh.write(Buffer.from(json));
    for (const c of chunks) await fh.write(c);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** Name as the model expects it: HF files may prefix `transformer.` (OpenAIGPTLMHeadModel). */
export function canonicalName(name: string): string | null {
  const n = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
  // lm_head is tied to tokens_embed; attn.bias / attn.masked_bias are HF's causal-mask buffers, not parameters.
  if (n === 'lm_head.weight' || /^h\.\d+\.attn\.(bias|masked_bias)$/.test(n)) return null;
  return n;
}

/** A checkpoint file whose tensor names and shapes are known before any data is read. */
export interface TensorSource {
  shapes: Map<string, number[]>;
  read(name: string): Promise<HostTensor>;
}

/**
 * GPT parameters from a tensor source, checked against `config`: every parameter present with
 * its shape; unknown extra tensors are an error too (they mean a different architecture).
 * `consume` receives each tensor as soon as it is read (e.g. to upload it and let the host copy
 * go); without it, all are returned.
 */
export async function loadParamsFrom(
  src: TensorSource,
  file: string,
  config: GptConfig,
  consume?: (name: string, t: HostTensor) => void,
): Promise<Map<string, HostTensor>> {
  const byName = new Map<string, string>(); // canonical → name in the file
  for (const name of src.shapes.keys()) {
    const c = canonicalName(name);
    if (c !== null) byName.set(c, name);
  }
  // Check names and shapes before reading any data.
  const shapes = new Map<string, HostTensor>();
  for (const [c, name] of byName) shapes.set(c, { shape: src.shapes.get(name)!, data: new Float32Array(0) });
  checkAgainstConfig(shapes, config, file, false);
  const out = new Map<string, HostTensor>();
  for (const s of paramSpecs(config)) {
    const t = await src.read(byName.get(s.name)!);
    checkFinite(t, s.name, file);
    if (consume) consume(s.name, t);
    else out.set(s.name, t);
  }
  return out;
}

/** GPT parameters from a safetensors file (see loadParamsFrom). */
export async function loadParamArrays(
  file: string,
  config: GptConfig,
  consume?: (name: string, t: HostTensor) => void,
): Promise<Map<string, HostTensor>> {
  const r = await openSafetensors(file);
  try {
    const shapes = new Map([...r.entries].map(([name, e]) => [name, e.shape]));
    return await loadParamsFrom({ shapes, read: (name) => r.read(name) }, file, config, consume);
  } finally {
    await r.close();
  }
}

function checkFinite(t: HostTensor, name: string, file: string): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) throw new CheckpointError(`${file}: tensor ${name} contains NaN or Infinity`, file, name);
  }
}

export function checkAgainstConfig(byName: Map<string, HostTensor>, config: GptConfig, file: string, checkValues = true): Map<string, HostTensor> {
  const specs = paramSpecs(config);
  const out = new Map<string, HostTensor>();
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) throw new CheckpointError(`${file}: missing tensor ${s.name}`, file, s.name);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new CheckpointError(`${file}: tensor ${s.name} has shape [${t.shape}], config.json expects [${s.shape}]`, file, s.name);
    }
    if (checkValues) checkFinite(t, s.name, file);
    out.set(s.name, t);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...byName.keys()].filter((k) => !known.has(k));
  if (extra.length) {
    throw new CheckpointError(`${file}: unexpected tensor ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}: not a GPT-1 checkpoint for this config`, file, extra[0]);
  }
  return out;
}

