// A restricted unpickler: the subset of Python's pickle (protocols 2-5) that PyTorch state dicts
// use, and nothing else. It builds plain data; the only "callables" are the few globals the caller
// allows, each mapped to a pure JS function. Any other global, and any opcode outside the subset,
// is refused with its name, so a hostile checkpoint cannot run code.

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** Any unpickled value: tuples and lists are arrays, dicts are PyDict, ints numbers (bigint if huge). */
export type PyValue = unknown;

/** What a GLOBAL resolves to: a function applied by REDUCE / NEWOBJ, or a class-like marker. */
export interface PyGlobal {
  readonly module: string;
  readonly name: string;
  /** Called by REDUCE (and NEWOBJ) with the argument tuple. */
  call?(args: PyValue[]): PyValue;
}

/** An object BUILD can set state on (e.g. OrderedDict's `_metadata`), which is then ignored. */
export class PyDict extends Map<PyValue, PyValue> {}

export interface UnpickleHooks {
  /** Resolves `module.name`, or returns undefined to refuse it. */
  findGlobal(module: string, name: string): PyGlobal | undefined;
  /** Resolves a persistent id (PyTorch: storages). */
  persistentLoad?(pid: PyValue): PyValue;
}

/**
 * Unpickles one pickle starting at `start`; returns the value and the offset after its STOP.
 * Throws PickleError on truncation, a refused global or an opcode outside the subset.
 */
export function unpickle(buf: Uint8Array, hooks: UnpickleHooks, start = 0): { value: PyValue; end: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = start;

  const need = (n: number) => {
    if (pos + n > buf.length) throw new PickleError(`truncated pickle (needs ${pos + n - buf.length} more bytes at offset ${pos})`);
  };
  const u8 = () => { need(1); return buf[pos++]; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length ${v} too large at offset ${pos - 8}`);
    return Number(v);
  };
  const bytes = (n: number) => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const utf8 = (n: number) => new TextDecoder('utf-8', { fatal: false }).decode(bytes(n));
  const line = () => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleError(`truncated pickle (no end of line after offset ${pos})`);
    const s = new TextDecoder('latin1').decode(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw new PickleError(`stack underflow at offset ${pos - 1}`);
    return stack.pop();
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new PickleError(`stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleError(`no MARK before offset ${pos - 1}`);
    return stack.splice(m);
  };
  const global = (module: string, name: string): PyGlobal => {
    const g = hooks.findGlobal(module, name);
    if (!g) throw new PickleError(`refused global ${module}.${name}: a checkpoint may only name tensor-rebuilding functions and storage types`);
    return g;
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    const g = fn as PyGlobal;
    if (!g || typeof g !== 'object' || typeof g.call !== 'function' || !Array.isArray(args)) {
      throw new PickleError(`cannot call ${describe(fn)} at offset ${pos - 1}`);
    }
    return g.call(args);
  };
  const getMemo = (i: number): PyValue => {
    if (!memo.has(i)) throw new PickleError(`memo entry ${i} missing at offset ${pos - 1}`);
    return memo.get(i);
  };
  const setItems = (d: PyValue, items: PyValue[]) => {
    if (!(d instanceof Map)) throw new PickleError(`SETITEM on a non-dict at offset ${pos - 1}`);
    if (items.length % 2) throw new PickleError(`odd number of dict items at offset ${pos - 1}`);
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };
  const append = (l: PyValue, items: PyValue[]) => {
    if (!Array.isArray(l)) throw new PickleError(`APPEND on a non-list at offset ${pos - 1}`);
    l.push(...items);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: frames are a buffering hint
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(long(bytes(u32()))); break; // LONG4
      case 0x49: { // INT (text; "00"/"01" are False/True)
        const s = line();
        stack.push(s === '00' ? false : s === '01' ? true : intText(s, at));
        break;
      }
      case 0x4c: stack.push(intText(line().replace(/L$/, ''), at)); break; // LONG (text)
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break; // BINUNICODE8
      case 0x54: stack.push(new TextDecoder('latin1').decode(bytes(u32()))); break; // BINSTRING (py2 str)
      case 0x55: stack.push(new TextDecoder('latin1').decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(Uint8Array.from(bytes(u32()))); break; // BINBYTES
      case 0x43: stack.push(Uint8Array.from(bytes(u8()))); break; // SHORT_BINBYTES
      case 0x8e: stack.push(Uint8Array.from(bytes(u64()))); break; // BINBYTES8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(intText(line(), at), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(getMemo(u8())); break; // BINGET
      case 0x6a: stack.push(getMemo(u32())); break; // LONG_BINGET
      case 0x67: stack.push(getMemo(intText(line(), at))); break; // GET
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL without names at offset ${at}`);
        stack.push(global(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD: state on a dict-like object (OrderedDict's _metadata) carries no weights
        pop();
        const obj = top();
        if (!(obj instanceof Map)) throw new PickleError(`BUILD on ${describe(obj)} at offset ${at}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) throw new PickleError(`persistent id at offset ${at} not expected here`);
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!hooks.persistentLoad) throw new PickleError(`persistent id at offset ${at} not expected here`);
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}) at offset ${at}`);
    }
  }
}

/** Two's-complement little-endian integer; a JS number when safe, else a bigint. */
function long(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function intText(s: string, at: number): number {
  if (!/^-?\d+$/.test(s)) throw new PickleError(`bad integer ${JSON.stringify(s)} at offset ${at}`);
  return Number(s);
}

function describe(v: PyValue): string {
  if (v && typeof v === 'object' && 'module' in v && 'name' in v) return `${String(v.module)}.${String(v.name)}`;
  return Array.isArray(v) ? 'a tuple' : v instanceof Map ? 'a dict' : typeof v;
}
