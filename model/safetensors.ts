// safetensors reading (F32, F16, BF16) and writing (F32, F16), with errors that name the file and
// the tensor. Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the raw little-endian data (offsets relative to the end of the header).
import { open, readFile, rename } from 'node:fs/promises';
import type { GptConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { bfloat16ToFloat32, float32ToHalf, halfToFloat32 } from './float16.js';
import { paramSpecs } from './params.js';

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

/** Reads every tensor of a safetensors file as float32. */
export async function readSafetensors(file: string): Promise<Map<string, HostTensor>> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  return parseSafetensors(buf, file);
}

export function parseSafetensors(buf: Buffer, file = 'safetensors'): Map<string, HostTensor> {
  if (buf.length < 8) throw new CheckpointError(`${file}: truncated (only ${buf.length} bytes, no header)`, file);
  const n = Number(buf.readBigUInt64LE(0));
  if (n > MAX_HEADER || n < 2) throw new CheckpointError(`${file}: not a safetensors file (header length ${n})`, file);
  if (8 + n > buf.length) throw new CheckpointError(`${file}: truncated inside the header (${buf.length} bytes)`, file);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CheckpointError(`${file}: corrupt header (${(err as Error).message})`, file);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError(`${file}: corrupt header (not an object)`, file);
  }
  const base = 8 + n;
  const out = new Map<string, HostTensor>();
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
    if (base + end > buf.length) throw bad(`file truncated (needs ${base + end} bytes, has ${buf.length})`);
    const at = buf.byteOffset + base + begin;
    let data: Float32Array;
    if (e.dtype === 'F32' && at % 4 === 0) {
      // Aligned (writers pad the header to 8 bytes): a view on the file buffer, no copy — for
      // GPT-1 that saves ~470 MB of peak memory while loading.
      data = new Float32Array(buf.buffer, at, want / 4);
      out.set(name, { shape: e.shape, data });
      continue;
    }
    // Otherwise copy into a fresh aligned buffer.
    const bytes = new Uint8Array(want);
    bytes.set(buf.subarray(base + begin, base + end));
    if (e.dtype === 'F32') data = new Float32Array(bytes.buffer);
    else if (e.dtype === 'F16') data = halfToFloat32(new Uint16Array(bytes.buffer));
    else data = bfloat16ToFloat32(new Uint16Array(bytes.buffer));
    out.set(name, { shape: e.shape, data });
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
  // lm_head is tied to tokens_embed; attn.bias is HF's causal-mask buffer, not a parameter.
  if (n === 'lm_head.weight' || /^h\.\d+\.attn\.bias$/.test(n)) return null;
  return n;
}

/**
 * GPT parameters from a safetensors file, checked against `config`: every parameter present with
 * its shape; unknown extra tensors are an error too (they mean a different architecture).
 */
export async function loadParamArrays(file: string, config: GptConfig): Promise<Map<string, HostTensor>> {
  const raw = await readSafetensors(file);
  const byName = new Map<string, HostTensor>();
  for (const [name, t] of raw) {
    const c = canonicalName(name);
    if (c !== null) byName.set(c, t);
  }
  return checkAgainstConfig(byName, config, file);
}

export function checkAgainstConfig(byName: Map<string, HostTensor>, config: GptConfig, file: string): Map<string, HostTensor> {
  const specs = paramSpecs(config);
  const out = new Map<string, HostTensor>();
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) throw new CheckpointError(`${file}: missing tensor ${s.name}`, file, s.name);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new CheckpointError(`${file}: tensor ${s.name} has shape [${t.shape}], config.json expects [${s.shape}]`, file, s.name);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) throw new CheckpointError(`${file}: tensor ${s.name} contains NaN or Infinity`, file, s.name);
    }
    out.set(s.name, t);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...byName.keys()].filter((k) => !known.has(k));
  if (extra.length) {
    throw new CheckpointError(`${file}: unexpected tensor ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}: not a GPT-1 checkpoint for this config`, file, extra[0]);
  }
  return out;
}

