// An unpickler for what PyTorch writes: TorchScript's data.pkl (protocol 2) and torch.save's
// (protocol 2 by default, up to 5 when asked). It never runs anything: globals outside a short
// allowlist are refused, TorchScript classes become plain objects whose BUILD state is kept, and
// the few functions PyTorch names (_rebuild_tensor_v2, OrderedDict, build_intlist...) are
// interpreted here. It is a loop over opcodes with no recursion, and every size the input claims is
// bounded by the bytes left or by the limits below, so hostile input ends in a ModelFormatError.
import { ModelFormatError, quote } from './format-error';

export type Dtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const ITEM_SIZE: Record<Dtype, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

const STORAGE_TYPES: Record<string, Dtype> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** Functions PyTorch's pickles call, read here without running anything. */
const FUNCTIONS = new Set([
  'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'collections.OrderedDict',
  'torch.jit._pickle.build_intlist', 'torch.jit._pickle.build_doublelist', 'torch.jit._pickle.build_boollist',
  'torch.jit._pickle.build_tensorlist', 'torch.jit._pickle.restore_type_tag',
]);

export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PTuple | PList | PDict | PObject | PGlobal | StorageType | StorageRef | TensorSpec;

// Containers carry their nesting depth, kept as they are built, so that deep input is refused here.
export class PTuple { constructor(readonly items: PickleValue[], public depth: number) {} }
export class PList { readonly items: PickleValue[] = []; depth = 1; }
export class PDict { readonly map = new Map<PickleValue, PickleValue>(); depth = 1; }
/** An instance of a TorchScript class (`__torch__.*`): never constructed, only its BUILD state kept. */
export class PObject { state: PickleValue = null; depth = 1; constructor(readonly className: string) {} }
export class PGlobal { constructor(readonly fullName: string) {} }
export class StorageType { constructor(readonly dtype: Dtype, readonly name: string) {} }
/** A persistent id ('storage', type, key, location, numel): the bytes live in the record data/<key>. */
export class StorageRef {
  constructor(readonly dtype: Dtype, readonly key: string, readonly location: string, readonly numel: number) {}
}
/** _rebuild_tensor_v2(storage, offset, size, stride, ...), unchecked against the storage's bytes. */
export class TensorSpec {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly size: number[], readonly stride: number[]) {}
}

export interface PickleLimits {
  maxStack: number; // values on the stack, marks' contents included
  maxMarks: number; // nested MARKs
  maxMemo: number; // memo entries
  maxObjects: number; // values built in all
  maxDepth: number; // container nesting
}

export const DEFAULT_LIMITS: PickleLimits = {
  maxStack: 1_000_000, maxMarks: 10_000, maxMemo: 1_000_000, maxObjects: 5_000_000, maxDepth: 1_000,
};

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID',
  0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE',
  0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET',
  0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT',
  0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS',
  0x47: 'BINFLOAT', 0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE',
  0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

export function depthOf(value: PickleValue): number {
  return value instanceof PTuple || value instanceof PList || value instanceof PDict || value instanceof PObject
    ? value.depth : 0;
}

export function typeName(value: PickleValue): string {
  if (value === null) return 'None';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value !== 'object') return typeof value;
  if (value instanceof PObject) return value.className;
  if (value instanceof PGlobal) return value.fullName;
  if (value instanceof StorageType) return `torch.${value.name}`;
  return value.constructor.name.replace(/^P/, '').toLowerCase();
}

/** Unpickles `data` (the record `what`, for messages). */
export function unpickle(data: Uint8Array, what: string, limits: PickleLimits = DEFAULT_LIMITS): PickleValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = []; // stack lengths at each open MARK
  const memo = new Map<number, PickleValue>();
  let objects = 0;
  let pos = 0;
  let at = 0; // the current opcode's position
  let op = 0;

  const fail = (message: string): never => {
    const opcode = OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
    throw new ModelFormatError(`${what}: ${message} (${opcode} at byte ${at})`);
  };
  const need = (n: number): void => {
    if (n > data.length - pos) fail(`needs ${n} more bytes, the record has ${data.length - pos} left`);
  };
  const u8 = (): number => { need(1); return data[pos++]; };
  const u16 = (): number => { need(2); pos += 2; return view.getUint16(pos - 2, true); };
  const u32 = (): number => { need(4); pos += 4; return view.getUint32(pos - 4, true); };
  const i32 = (): number => { need(4); pos += 4; return view.getInt32(pos - 4, true); };
  const u64 = (): number => {
    need(8);
    const value = view.getBigUint64(pos, true);
    pos += 8;
    if (value > BigInt(data.length)) fail(`a length of ${value} is longer than the record`);
    return Number(value);
  };
  const take = (n: number): Uint8Array => { need(n); pos += n; return data.subarray(pos - n, pos); };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1000) fail('a text argument has no end of line');
    const text = utf8.decode(data.subarray(pos, end));
    pos = end + 1;
    return text;
  };

  const floor = (): number => (marks.length ? marks[marks.length - 1] : 0);
  const push = (value: PickleValue): void => {
    if (stack.length >= limits.maxStack) fail(`the stack grows past ${limits.maxStack} values`);
    stack.push(value);
  };
  const pop = (): PickleValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack.pop() as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PickleValue[] => {
    if (!marks.length) fail('no MARK to pop to');
    const start = marks.pop() as number;
    return stack.splice(start);
  };
  const built = (): void => {
    if (++objects > limits.maxObjects) fail(`more than ${limits.maxObjects} objects`);
  };
  const deeper = (depth: number): number => {
    if (depth > limits.maxDepth) fail(`containers nest deeper than ${limits.maxDepth}`);
    return depth;
  };
  const tuple = (items: PickleValue[]): PTuple => {
    built();
    let depth = 0;
    for (const item of items) depth = Math.max(depth, depthOf(item));
    return new PTuple(items, deeper(depth + 1));
  };
  const remember = (index: number, value: PickleValue): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) fail(`the memo grows past ${limits.maxMemo} entries`);
    memo.set(index, value);
  };
  const recall = (index: number): PickleValue => {
    if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
    return memo.get(index) as PickleValue;
  };
  const append = (list: PickleValue, items: PickleValue[]): void => {
    if (!(list instanceof PList)) fail(`appends to a ${typeName(list)}, not a list`);
    const target = list as PList;
    for (const item of items) {
      target.items.push(item);
      target.depth = deeper(Math.max(target.depth, depthOf(item) + 1));
    }
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (!(dict instanceof PDict)) fail(`sets items of a ${typeName(dict)}, not a dict`);
    if (items.length % 2) fail('an odd number of values for dict items');
    const target = dict as PDict;
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (key !== null && typeof key === 'object') fail(`a dict key of type ${typeName(key)}`);
      target.map.set(key, items[i + 1]);
      target.depth = deeper(Math.max(target.depth, depthOf(items[i + 1]) + 1));
    }
  };
  const global = (module: string, name: string): PickleValue => {
    const full = `${module}.${name}`;
    if (module === 'torch' && Object.hasOwn(STORAGE_TYPES, name)) return new StorageType(STORAGE_TYPES[name], name);
    if (FUNCTIONS.has(full)) return new PGlobal(full);
    if (module === '__torch__' || module.startsWith('__torch__.')) return new PGlobal(full);
    return fail(`global ${quote(full)} is not allowed: only PyTorch's tensors, storages and TorchScript ` +
      'module classes are read');
  };
  const int = (value: PickleValue, field: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`${field} is ${typeName(value)}, not an integer`);
    return value as number;
  };
  const ints = (value: PickleValue, field: string): number[] => {
    if (!(value instanceof PTuple || value instanceof PList)) fail(`${field} is ${typeName(value)}, not a tuple`);
    return (value as PTuple).items.map((v) => int(v, field));
  };
  const call = (fn: PickleValue, argsValue: PickleValue): PickleValue => {
    if (!(argsValue instanceof PTuple)) fail(`arguments are ${typeName(argsValue)}, not a tuple`);
    const args = (argsValue as PTuple).items;
    const name = fn instanceof PGlobal ? fn.fullName : typeName(fn);
    switch (name) {
      case 'torch._utils._rebuild_tensor_v2': {
        if (args.length < 4 || !(args[0] instanceof StorageRef)) fail('_rebuild_tensor_v2 without a storage');
        const size = ints(args[2], 'a tensor size');
        const stride = ints(args[3], 'a tensor stride');
        if (size.length !== stride.length) fail(`a tensor of size (${size}) has stride (${stride})`);
        built();
        return new TensorSpec(args[0] as StorageRef, int(args[1], 'a storage offset'), size, stride);
      }
      case 'torch._utils._rebuild_parameter':
        if (!(args[0] instanceof TensorSpec)) fail('_rebuild_parameter of something not a tensor');
        return args[0];
      case 'collections.OrderedDict': {
        built();
        const dict = new PDict();
        if (args.length) {
          if (!(args[0] instanceof PList)) fail('OrderedDict of something not a list of pairs');
          const pairs: PickleValue[] = [];
          for (const pair of (args[0] as PList).items) {
            if (!(pair instanceof PTuple) || pair.items.length !== 2) fail('OrderedDict of something not a pair');
            pairs.push(...(pair as PTuple).items);
          }
          setItems(dict, pairs);
        }
        return dict;
      }
      case 'torch.jit._pickle.build_intlist':
      case 'torch.jit._pickle.build_doublelist':
      case 'torch.jit._pickle.build_boollist':
      case 'torch.jit._pickle.build_tensorlist':
      case 'torch.jit._pickle.restore_type_tag':
        if (!args.length) fail(`${name} without arguments`);
        return args[0];
      default:
        return fail(`calls ${quote(name)}, which is not a function PyTorch's files call`);
    }
  };

  for (;;) {
    at = pos;
    if (pos >= data.length) { op = 0; fail('the pickle ends without STOP'); }
    op = data[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol < 2 || protocol > 5) fail(`protocol ${protocol} (2 to 5 are read)`);
        break;
      }
      case 0x95: u64(); break; // FRAME: a length hint, and the frame is inside the record
      case 0x2e: { // STOP
        const result = pop();
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) fail(`MARKs nest deeper than ${limits.maxMarks}`);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break;
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x4a: push(i32()); break; // BININT
      case 0x8a: // LONG1
      case 0x8b: { // LONG4
        const n = op === 0x8a ? u8() : i32();
        if (n < 0 || n > 64) fail(`an integer of ${n} bytes`);
        const bytes = take(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
        if (n && bytes[n - 1] & 0x80) value -= 1n << BigInt(8 * n);
        const small = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
        push(small ? Number(value) : value);
        break;
      }
      case 0x47: need(8); pos += 8; push(view.getFloat64(pos - 8, false)); break; // BINFLOAT
      case 0x58: push(utf8.decode(take(u32()))); built(); break; // BINUNICODE
      case 0x8c: push(utf8.decode(take(u8()))); built(); break; // SHORT_BINUNICODE
      case 0x8d: push(utf8.decode(take(u64()))); built(); break; // BINUNICODE8
      case 0x54: { // BINSTRING (Python 2 str)
        const n = i32();
        if (n < 0) fail(`a string of ${n} bytes`);
        push(latin1.decode(take(n)));
        built();
        break;
      }
      case 0x55: push(latin1.decode(take(u8()))); built(); break; // SHORT_BINSTRING
      case 0x42: push(take(u32())); built(); break; // BINBYTES
      case 0x43: push(take(u8())); built(); break; // SHORT_BINBYTES
      case 0x8e: // BINBYTES8
      case 0x96: push(take(u64())); built(); break; // BYTEARRAY8
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x5d: built(); push(new PList()); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); built(); const list = new PList(); append(list, items); push(list); break; } // LIST
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: built(); push(new PDict()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); built(); const dict = new PDict(); setItems(dict, items); push(dict); break; } // DICT
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x63: { const module = line(); const name = line(); push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('a global named by non-strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; } // REDUCE
      case 0x81: // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        if (op === 0x92) pop(); // kwargs
        pop(); // args: TorchScript classes are never constructed
        const cls = pop();
        if (!(cls instanceof PGlobal) || !cls.fullName.startsWith('__torch__.')) {
          fail(`creates an instance of ${typeName(cls)}, not of a TorchScript class`);
        }
        built();
        push(new PObject((cls as PGlobal).fullName));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PObject) {
          target.state = state;
          target.depth = deeper(Math.max(target.depth, depthOf(state) + 1));
        } else if (!(target instanceof PDict || target instanceof TensorSpec)) {
          // An OrderedDict's _metadata, a tensor's attributes: kept out, as they carry no weights.
          fail(`BUILD on a ${typeName(target)}`);
        }
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        const items = pid instanceof PTuple ? pid.items : [];
        if (items.length !== 5 || items[0] !== 'storage' || !(items[1] instanceof StorageType) ||
          typeof items[2] !== 'string' || typeof items[3] !== 'string') {
          fail(`a persistent id that is not ('storage', type, key, location, numel)`);
        }
        const numel = int(items[4], 'a storage size');
        if (numel < 0) fail(`a storage of ${numel} elements`);
        built();
        push(new StorageRef((items[1] as StorageType).dtype, items[2] as string, items[3] as string, numel));
        break;
      }
      case 0x71: remember(u8(), top()); break; // BINPUT
      case 0x72: remember(u32(), top()); break; // LONG_BINPUT
      case 0x94: remember(memo.size, top()); break; // MEMOIZE
      case 0x68: push(recall(u8())); break; // BINGET
      case 0x6a: push(recall(u32())); break; // LONG_BINGET
      default:
        fail(OPCODE_NAMES[op] ? `opcode ${OPCODE_NAMES[op]} is not one PyTorch writes`
          : `0x${op.toString(16).padStart(2, '0')} is not a pickle opcode`);
    }
  }
}
