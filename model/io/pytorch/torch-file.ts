// PyTorch `torch.save` files holding a state dict (`pytorch_model.bin`, `*.pt`, `*.pth`), in both
// of PyTorch's layouts:
//  - zip (torch >= 1.6): `<name>/data.pkl` (the pickle; storages as persistent ids) and
//    `<name>/data/<key>` (each storage's raw little-endian bytes);
//  - legacy (torch < 1.6): pickles of the magic number, the protocol version, the sys info and the
//    state dict, then a pickle of the storage keys, then each storage as int64 numel + raw bytes.
// The pickles go through the restricted unpickler, which knows only the globals below. Tensors are
// views (storage, offset, shape, stride) read and converted to float32 one at a time on request.
import { open, type FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';
import { CheckpointError } from '../../errors.js';
import { bfloat16ToFloat32, halfToFloat32 } from '../float16.js';
import type { HostTensor } from '../safetensors.js';
import { PickleError, PyDict, unpickle, type PyGlobal, type PyValue } from './pickle.js';

/** Storage classes by name: the dtype it holds and bytes per element. Only F32/F16/BF16/F64 convert. */
const STORAGE_TYPES: Record<string, { dtype: string; size: number }> = {
  FloatStorage: { dtype: 'F32', size: 4 },
  HalfStorage: { dtype: 'F16', size: 2 },
  BFloat16Storage: { dtype: 'BF16', size: 2 },
  DoubleStorage: { dtype: 'F64', size: 8 },
  LongStorage: { dtype: 'I64', size: 8 },
  IntStorage: { dtype: 'I32', size: 4 },
  ShortStorage: { dtype: 'I16', size: 2 },
  CharStorage: { dtype: 'I8', size: 1 },
  ByteStorage: { dtype: 'U8', size: 1 },
  BoolStorage: { dtype: 'BOOL', size: 1 },
  ComplexFloatStorage: { dtype: 'C64', size: 8 },
  ComplexDoubleStorage: { dtype: 'C128', size: 16 },
};
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export interface TorchStorage {
  key: string;
  type: string;
  dtype: string;
  elementSize: number;
  /** elements in the whole storage */
  numel: number;
}

export interface TorchTensor {
  storage: TorchStorage;
  /** in elements, from the start of the storage */
  offset: number;
  shape: number[];
  stride: number[];
}

export interface TorchCheckpoint {
  file: string;
  format: 'zip' | 'legacy';
  /** The state dict's tensors in file order. */
  tensors: Map<string, TorchTensor>;
  /** The tensor as float32 (F32, F16, BF16 or F64 storages); a clear error for other dtypes. */
  read(name: string): Promise<HostTensor>;
  close(): Promise<void>;
}

const isGlobal = (v: PyValue, name?: string): v is PyGlobal =>
  typeof v === 'object' && v !== null && 'module' in v && 'name' in v && (name === undefined || (v as PyGlobal).name === name);

const intArray = (v: PyValue, what: string): number[] => {
  if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new PickleError(`${what} is not a tuple of sizes`);
  return v as number[];
};

/** The globals a state dict may name, as pure functions over plain data. */
function stateDictGlobals(): (module: string, name: string) => PyGlobal | undefined {
  const tensor = (args: PyValue[]): TorchTensor => {
    const [storage, offset, shape, stride] = args;
    if (!storage || typeof storage !== 'object' || !('key' in storage)) throw new PickleError('tensor rebuilt without a storage');
    if (!Number.isSafeInteger(offset)) throw new PickleError('tensor rebuilt with a bad storage offset');
    const s = storage as TorchStorage & { viewOffset?: number };
    return { storage: s, offset: (offset as number) + (s.viewOffset ?? 0), shape: intArray(shape, 'tensor size'), stride: intArray(stride, 'tensor stride') };
  };
  const table = new Map<string, PyGlobal>([
    ['collections.OrderedDict', {
      module: 'collections', name: 'OrderedDict',
      call: (args) => {
        const d = new PyDict();
        if (Array.isArray(args[0])) for (const kv of args[0] as PyValue[][]) d.set(kv[0], kv[1]);
        return d;
      },
    }],
    ['torch._utils._rebuild_tensor_v2', { module: 'torch._utils', name: '_rebuild_tensor_v2', call: tensor }],
    ['torch._utils._rebuild_tensor', { module: 'torch._utils', name: '_rebuild_tensor', call: tensor }],
    ['torch._utils._rebuild_parameter', { module: 'torch._utils', name: '_rebuild_parameter', call: (args) => args[0] }],
  ]);
  for (const name of Object.keys(STORAGE_TYPES)) table.set(`torch.${name}`, { module: 'torch', name });
  return (module, name) => table.get(`${module}.${name}`);
}

/**
 * Unpickles a state dict. `storage(type, key, numel, viewMeta)` turns each persistent id into a
 * storage (the two layouts differ only there).
 */
function unpickleStateDict(
  buf: Uint8Array,
  start: number,
): { tensors: Map<string, TorchTensor>; storages: Map<string, TorchStorage>; end: number } {
  const storages = new Map<string, TorchStorage>();
  const { value, end } = unpickle(buf, {
    findGlobal: stateDictGlobals(),
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new PickleError('unknown persistent id (not a storage)');
      const [, type, key, , numel, view] = pid as [string, PyValue, PyValue, PyValue, PyValue, PyValue];
      if (!isGlobal(type) || !(type.name in STORAGE_TYPES)) throw new PickleError('storage of an unknown type');
      if (typeof key !== 'string' || !Number.isSafeInteger(numel)) throw new PickleError('malformed storage id');
      const t = STORAGE_TYPES[type.name];
      let s = storages.get(key);
      if (!s) {
        s = { key, type: type.name, dtype: t.dtype, elementSize: t.size, numel: numel as number };
        storages.set(key, s);
      }
      // Legacy views of a storage: (view_key, offset, size).
      if (Array.isArray(view) && Number.isSafeInteger(view[1])) return { ...s, viewOffset: view[1] as number };
      return s;
    },
  }, start);
  let dict = value;
  // Training scripts often wrap the weights: {"state_dict": {...}} or {"model": {...}}.
  if (dict instanceof Map && !hasTensor(dict)) dict = dict.get('state_dict') ?? dict.get('model') ?? dict;
  if (!(dict instanceof Map)) throw new PickleError('the pickle holds no state dict (a dict of tensors)');
  const tensors = new Map<string, TorchTensor>();
  for (const [k, v] of dict) {
    if (typeof k === 'string' && v && typeof v === 'object' && 'storage' in v) tensors.set(k, v as TorchTensor);
  }
  if (tensors.size === 0) throw new PickleError('the pickle holds no tensors');
  return { tensors, storages, end };
}

const hasTensor = (d: Map<PyValue, PyValue>) => [...d.values()].some((v) => v && typeof v === 'object' && 'storage' in v);

/** Raw little-endian storage bytes to float32. */
function toFloat32(bytes: Uint8Array, dtype: string): Float32Array {
  const copy = Uint8Array.from(bytes); // aligned, owned
  switch (dtype) {
    case 'F32': return new Float32Array(copy.buffer);
    case 'F16': return halfToFloat32(new Uint16Array(copy.buffer));
    case 'BF16': return bfloat16ToFloat32(new Uint16Array(copy.buffer));
    case 'F64': return Float32Array.from(new Float64Array(copy.buffer));
    default: throw new Error(`dtype ${dtype}`);
  }
}

/** Elements of a view, in row-major order of its shape. */
function gather(storage: Float32Array, base: number, shape: number[], stride: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let off = base;
    for (let d = 0; d < shape.length; d++) off += idx[d] * stride[d];
    out[i] = storage[off];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const contiguous = (shape: number[], stride: number[]) => {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
};

/** Shared by both layouts: checks a view against its storage and converts it to float32. */
async function readView(
  file: string,
  name: string,
  t: TorchTensor,
  storageBytes: (s: TorchStorage, fromElem: number, count: number) => Promise<Uint8Array>,
): Promise<HostTensor> {
  const bad = (why: string) => new CheckpointError(`${file}: tensor ${name}: ${why}`, file, name);
  const s = t.storage;
  if (!FLOAT_DTYPES.has(s.dtype)) throw bad(`unsupported dtype ${s.dtype} (torch.${s.type}; F32, F16, BF16 or F64 expected)`);
  if (t.shape.length !== t.stride.length) throw bad(`size [${t.shape}] and stride [${t.stride}] disagree`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  const last = n === 0 ? t.offset : t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0);
  if (last >= s.numel && n > 0) throw bad(`view (offset ${t.offset}, size [${t.shape}], stride [${t.stride}]) reaches past its storage of ${s.numel} elements`);
  if (n === 0) return { shape: t.shape, data: new Float32Array(0) };
  if (contiguous(t.shape, t.stride)) {
    return { shape: t.shape, data: toFloat32(await storageBytes(s, t.offset, n), s.dtype) };
  }
  const span = last - t.offset + 1;
  const part = toFloat32(await storageBytes(s, t.offset, span), s.dtype);
  return { shape: t.shape, data: gather(part, 0, t.shape, t.stride) };
}

/** A TorchCheckpoint over a layout's way of reading storage bytes. */
function checkpoint(
  file: string,
  format: TorchCheckpoint['format'],
  tensors: Map<string, TorchTensor>,
  storageBytes: (s: TorchStorage, fromElem: number, count: number, name: string) => Promise<Uint8Array>,
  close: () => Promise<void>,
): TorchCheckpoint {
  return {
    file,
    format,
    tensors,
    async read(name) {
      const t = tensors.get(name);
      if (!t) throw new CheckpointError(`${file}: missing tensor ${name}`, file, name);
      return readView(file, name, t, (s, from, count) => storageBytes(s, from, count, name));
    },
    close,
  };
}

const asCheckpointError = (file: string, err: unknown): Error =>
  err instanceof PickleError ? new CheckpointError(`${file}: ${err.message}`, file) : (err as Error);

/** Opens a PyTorch checkpoint (either layout); tensors are read on request. */
export async function openTorchCheckpoint(file: string): Promise<TorchCheckpoint> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  const size = (await fh.stat()).size;
  const head = Buffer.alloc(Math.min(4, size));
  await fh.read(head, 0, head.length, 0);
  if (head.length === 4 && head.readUInt32LE(0) === 0x04034b50) {
    await fh.close();
    return openZip(file);
  }
  if (head.length >= 2 && head[0] === 0x80) {
    try {
      return await openLegacy(file, fh, size);
    } catch (err) {
      await fh.close();
      throw asCheckpointError(file, err);
    }
  }
  await fh.close();
  throw new CheckpointError(`${file}: not a PyTorch checkpoint (neither a zip archive nor a pickle)`, file);
}

async function openLegacy(file: string, fh: FileHandle, size: number): Promise<TorchCheckpoint> {
  // The pickles are small next to the storages: read a window, widening it if a pickle runs past it.
  let window = Math.min(size, 1 << 20);
  for (;;) {
    const buf = Buffer.alloc(window);
    await fh.read(buf, 0, window, 0);
    try {
      const noGlobals = { findGlobal: () => undefined };
      const magic = unpickle(buf, noGlobals, 0);
      if (magic.value !== LEGACY_MAGIC) throw new CheckpointError(`${file}: not a PyTorch checkpoint (a pickle without PyTorch's magic number)`, file);
      const proto = unpickle(buf, noGlobals, magic.end);
      if (proto.value !== LEGACY_PROTOCOL) throw new CheckpointError(`${file}: unsupported legacy PyTorch protocol ${String(proto.value)}`, file);
      const info = unpickle(buf, noGlobals, proto.end);
      if (!(info.value instanceof Map) || info.value.get('little_endian') !== true) {
        throw new CheckpointError(`${file}: written on a big-endian machine (unsupported)`, file);
      }
      const sd = unpickleStateDict(buf, info.end);
      const keys = unpickle(buf, noGlobals, sd.end);
      if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new PickleError('storage key list missing');
      // Walk the storages: each is an int64 element count and the raw bytes.
      const where = new Map<string, number>();
      let pos = keys.end;
      const n8 = Buffer.alloc(8);
      for (const key of keys.value as string[]) {
        const s = sd.storages.get(key);
        if (!s) throw new PickleError(`storage ${key} listed but never used`);
        if (pos + 8 > size) throw new CheckpointError(`${file}: truncated (storage ${key} missing)`, file);
        await fh.read(n8, 0, 8, pos);
        const numel = Number(n8.readBigInt64LE(0));
        if (numel !== s.numel) throw new CheckpointError(`${file}: storage ${key} holds ${numel} elements, the pickle says ${s.numel}`, file);
        where.set(key, pos + 8);
        pos += 8 + numel * s.elementSize;
      }
      for (const [key, s] of sd.storages) if (!where.has(key)) throw new PickleError(`storage ${key} (torch.${s.type}) is not in the file`);
      return checkpoint(file, 'legacy', sd.tensors, async (s, from, count, name) => {
        const bytes = Buffer.alloc(count * s.elementSize);
        const { bytesRead } = await fh.read(bytes, 0, bytes.length, where.get(s.key)! + from * s.elementSize);
        if (bytesRead !== bytes.length) throw new CheckpointError(`${file}: tensor ${name}: file truncated`, file, name);
        return bytes;
      }, () => fh.close());
    } catch (err) {
      if (err instanceof PickleError && err.message.startsWith('truncated') && window < size) {
        window = Math.min(size, window * 4);
        continue;
      }
      throw err;
    }
  }
}

// yauzl's callbacks as promises.
const openZipFile = (file: string) => new Promise<yauzl.ZipFile>((resolve, reject) => {
  yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, zf) => (err ? reject(err) : resolve(zf)));
});
const zipEntries = (zf: yauzl.ZipFile) => new Promise<Map<string, yauzl.Entry>>((resolve, reject) => {
  const out = new Map<string, yauzl.Entry>();
  zf.on('entry', (e: yauzl.Entry) => { out.set(e.fileName, e); zf.readEntry(); });
  zf.on('end', () => resolve(out));
  zf.on('error', reject);
  zf.readEntry();
});
const readEntry = (zf: yauzl.ZipFile, e: yauzl.Entry, start = 0, end = e.uncompressedSize) => new Promise<Buffer>((resolve, reject) => {
  // Ranges are only possible on stored entries (PyTorch stores all of them uncompressed).
  const opts = e.compressionMethod === 0 ? { start, end } : {};
  zf.openReadStream(e, opts, (err, stream) => {
    if (err) return reject(err);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => {
      const all = Buffer.concat(chunks);
      resolve(e.compressionMethod === 0 ? all : all.subarray(start, end));
    });
  });
});

async function openZip(file: string): Promise<TorchCheckpoint> {
  let zf: yauzl.ZipFile;
  let entries: Map<string, yauzl.Entry>;
  try {
    zf = await openZipFile(file);
    entries = await zipEntries(zf);
  } catch (err) {
    throw new CheckpointError(`${file}: corrupt or truncated zip archive (${(err as Error).message})`, file);
  }
  try {
    const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (!pkl) throw new CheckpointError(`${file}: a zip archive without <name>/data.pkl: not a PyTorch checkpoint`, file);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    const order = entries.get(`${prefix}byteorder`);
    if (order && (await readEntry(zf, order)).toString() !== 'little') throw new CheckpointError(`${file}: written big-endian (unsupported)`, file);
    let sd: ReturnType<typeof unpickleStateDict>;
    try {
      sd = unpickleStateDict(await readEntry(zf, entries.get(pkl)!), 0);
    } catch (err) {
      throw asCheckpointError(file, err);
    }
    for (const [key, s] of sd.storages) {
      const e = entries.get(`${prefix}data/${key}`);
      if (!e) throw new CheckpointError(`${file}: storage ${key} (torch.${s.type}) missing from the archive`, file);
      if (e.uncompressedSize < s.numel * s.elementSize) {
        throw new CheckpointError(`${file}: storage ${key} holds ${e.uncompressedSize} bytes, needs ${s.numel * s.elementSize}`, file);
      }
    }
    return checkpoint(file, 'zip', sd.tensors, async (s, from, count, name) => {
      try {
        return await readEntry(zf, entries.get(`${prefix}data/${s.key}`)!, from * s.elementSize, (from + count) * s.elementSize);
      } catch (err) {
        throw new CheckpointError(`${file}: tensor ${name}: cannot read its storage (${(err as Error).message})`, file, name);
      }
    }, async () => zf.close());
  } catch (err) {
    zf.close();
    throw err;
  }
}
