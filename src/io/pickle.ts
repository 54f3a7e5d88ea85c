/**
 * A pickle reader that builds plain data and never runs code.
 *
 * It implements the binary opcodes of protocols 2-5 (the ones `torch.save` and `torch.jit.save` emit; the
 * opcode table is CPython's `Lib/pickletools.py`). A global is looked up in a caller-supplied allowlist at the
 * moment its opcode is read; anything else raises `UnsafePickleError` before any later opcode is interpreted.
 * Allowlisted globals are JavaScript builders supplied by the caller; REDUCE and NEWOBJ only dispatch to them.
 * Every length read from the stream is checked against the remaining bytes before anything is sliced.
 *
 * Values: None is null, ints are numbers (bigint beyond 2^53), lists are arrays, tuples are frozen arrays,
 * dicts are Maps (keys need not be strings), sets are Sets, bytes are Uint8Array views into the input.
 */
import { FileFormatError, UnsafePickleError } from '../errors.js';

/** An allowlisted global: `reduce` handles `REDUCE(global, args)`, `construct` handles `NEWOBJ(global, args)`. */
export interface PickleGlobal {
  readonly name: string;
  reduce?(args: unknown[]): unknown;
  construct?(args: unknown[]): unknown;
}

/** An instance built by NEWOBJ for a class that only carries state (e.g. TorchScript `__torch__.*` modules). */
export class PickleObject {
  readonly className: string;
  state: unknown = undefined;
  constructor(className: string) {
    this.className = className;
  }
}

export interface UnpickleOptions {
  /** Names the stream in errors. */
  source: string;
  /** Returns the builder for `module.name`, or undefined to refuse it. */
  findGlobal(module: string, name: string): PickleGlobal | undefined;
  /** Resolves a persistent id (BINPERSID); without it, persistent ids are a format error. */
  persistentLoad?(pid: unknown): unknown;
}

/** No tensor checkpoint needs integers wider than this; the bound keeps bigint parsing linear in practice. */
const MAX_LONG_BYTES = 1024;

/** Unpickles one pickle from `bytes` starting at `offset`; returns the value and the offset after STOP. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions, offset = 0): { value: unknown; end: number } {
  return new Unpickler(bytes, options, offset).run();
}

class Unpickler {
  private readonly view: DataView;
  private pos: number;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  /** Globals this stream obtained from the allowlist; only these may be called by REDUCE or NEWOBJ. */
  private readonly globals = new WeakSet<PickleGlobal>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
    offset: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = offset;
  }

  private fail(defect: string): never {
    throw new FileFormatError(this.options.source, `invalid pickle: ${defect}`);
  }

  private need(n: number, what: string): number {
    if (n < 0 || this.pos + n > this.bytes.byteLength) {
      this.fail(`${what} of ${n} bytes at offset ${this.pos} runs past the end of the ${this.bytes.byteLength}-byte stream (truncated)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.view.getUint8(this.need(1, 'operand'));
  }
  private u16(): number {
    return this.view.getUint16(this.need(2, 'operand'), true);
  }
  private u32(): number {
    return this.view.getUint32(this.need(4, 'operand'), true);
  }
  private u64(what: string): number {
    const value = this.view.getBigUint64(this.need(8, 'operand'), true);
    if (value > BigInt(this.bytes.byteLength)) this.fail(`${what} length ${value} exceeds the stream size`);
    return Number(value);
  }
  private slice(n: number, what: string): Uint8Array {
    const at = this.need(n, what);
    return this.bytes.subarray(at, at + n);
  }
  private line(): string {
    const start = this.pos;
    const end = this.bytes.indexOf(0x0a, start);
    if (end < 0) this.fail(`unterminated text operand at offset ${start}`);
    this.pos = end + 1;
    return latin1(this.bytes.subarray(start, end));
  }
  private utf8(n: number): string {
    return new TextDecoder('utf-8').decode(this.slice(n, 'string'));
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail(`stack underflow at offset ${this.pos - 1}`);
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) this.fail(`stack underflow at offset ${this.pos - 1}`);
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const previous = this.metastack.pop();
    if (previous === undefined) this.fail(`MARK expected before offset ${this.pos - 1}`);
    this.stack = previous;
    return items;
  }
  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`memo index ${index} is not defined`);
    return this.memo.get(index);
  }

  private global(module: string, name: string): PickleGlobal {
    const found = this.options.findGlobal(module, name);
    if (found === undefined) throw new UnsafePickleError(this.options.source, `${module}.${name}`);
    this.globals.add(found);
    return found;
  }

  private isGlobal(value: unknown): value is PickleGlobal {
    return typeof value === 'object' && value !== null && this.globals.has(value as PickleGlobal);
  }

  private describe(value: unknown): string {
    if (value instanceof PickleObject) return `an instance of ${value.className}`;
    if (this.isGlobal(value)) return `global ${value.name}`;
    if (value === null) return 'None';
    if (Array.isArray(value)) return Object.isFrozen(value) ? 'a tuple' : 'a list';
    if (value instanceof Map) return 'a dict';
    if (value instanceof Set) return 'a set';
    if (value instanceof Uint8Array) return 'bytes';
    return `a ${typeof value}`;
  }

  private list(value: unknown): unknown[] {
    if (!Array.isArray(value) || Object.isFrozen(value)) this.fail(`append to ${this.describe(value)} at offset ${this.pos - 1}`);
    return value;
  }

  private dict(value: unknown): Map<unknown, unknown> {
    if (!(value instanceof Map)) this.fail(`set item on ${this.describe(value)} at offset ${this.pos - 1}`);
    return value;
  }

  run(): { value: unknown; end: number } {
    for (;;) {
      const at = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: {
          const protocol = this.u8();
          if (protocol > 5) this.fail(`unsupported protocol ${protocol}`);
          break;
        }
        case 0x95: // FRAME: a length hint only
          this.u64('frame');
          break;
        case 0x2e: // STOP
          return { value: this.pop(), end: this.pos };
        case 0x28: // MARK
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.top());
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88:
          this.stack.push(true);
          break;
        case 0x89:
          this.stack.push(false);
          break;
        case 0x4a: // BININT
          this.stack.push(this.view.getInt32(this.need(4, 'operand'), true));
          break;
        case 0x4b: // BININT1
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.stack.push(littleEndianSigned(this.slice(this.u8(), 'long')));
          break;
        case 0x8b: {
          const n = this.view.getInt32(this.need(4, 'operand'), true);
          if (n > MAX_LONG_BYTES) this.fail(`LONG4 of ${n} bytes at offset ${at} exceeds the ${MAX_LONG_BYTES}-byte limit`);
          this.stack.push(littleEndianSigned(this.slice(n, 'long')));
          break;
        }
        case 0x47: // BINFLOAT, big-endian
          this.stack.push(this.view.getFloat64(this.need(8, 'operand'), false));
          break;
        case 0x58: // BINUNICODE
          this.stack.push(this.utf8(this.u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.utf8(this.u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.stack.push(this.utf8(this.u64('string')));
          break;
        case 0x54: // BINSTRING (Python 2 str)
          this.stack.push(latin1(this.slice(this.view.getInt32(this.need(4, 'operand'), true), 'string')));
          break;
        case 0x55: // SHORT_BINSTRING
          this.stack.push(latin1(this.slice(this.u8(), 'string')));
          break;
        case 0x42: // BINBYTES
          this.stack.push(this.slice(this.u32(), 'bytes'));
          break;
        case 0x43: // SHORT_BINBYTES
          this.stack.push(this.slice(this.u8(), 'bytes'));
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          this.stack.push(this.slice(this.u64('bytes'), 'bytes'));
          break;
        case 0x29: // EMPTY_TUPLE
          this.stack.push(Object.freeze([]));
          break;
        case 0x74: {
          // popMark replaces this.stack, so the items are taken before the push target is read.
          const items = Object.freeze(this.popMark());
          this.stack.push(items);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const n = op - 0x84;
          if (this.stack.length < n) this.fail(`stack underflow at offset ${at}`);
          this.stack.push(Object.freeze(this.stack.splice(this.stack.length - n, n)));
          break;
        }
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x61: {
          const item = this.pop();
          this.list(this.top()).push(item);
          break;
        }
        case 0x65: {
          const items = this.popMark();
          const list = this.list(this.top());
          // One push per item: spreading a long MARK run as arguments overflows the call stack.
          for (const item of items) list.push(item);
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.stack.push(new Map<unknown, unknown>());
          break;
        case 0x73: {
          const value = this.pop();
          const key = this.pop();
          this.dict(this.top()).set(key, value);
          break;
        }
        case 0x75: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail(`SETITEMS with an odd number of items at offset ${at}`);
          const dict = this.dict(this.top());
          for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
          break;
        }
        case 0x8f: // EMPTY_SET
          this.stack.push(new Set<unknown>());
          break;
        case 0x90: {
          const items = this.popMark();
          const set = this.top();
          if (!(set instanceof Set)) this.fail(`ADDITEMS on ${this.describe(set)} at offset ${at}`);
          for (const item of items) set.add(item);
          break;
        }
        case 0x91: {
          const items = new Set(this.popMark());
          this.stack.push(items);
          break;
        }
        case 0x71: // BINPUT
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memo.set(this.u32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memo.set(this.memo.size, this.top());
          break;
        case 0x68: // BINGET
          this.stack.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.stack.push(this.memoGet(this.u32()));
          break;
        case 0x63: {
          const module = this.line();
          const name = this.line();
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x93: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail(`STACK_GLOBAL needs two strings at offset ${at}`);
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x69: {
          // INST names its class inline: refuse it by name like any other global, and otherwise as unsupported.
          const module = this.line();
          const name = this.line();
          this.global(module, name);
          this.fail(`opcode INST at offset ${at} is not supported`);
          break;
        }
        case 0x52: {
          const args = this.pop();
          const callable = this.pop();
          if (!(this.isGlobal(callable) && callable.reduce !== undefined)) this.fail(`REDUCE on ${this.describe(callable)} at offset ${at}`);
          if (!Array.isArray(args)) this.fail(`REDUCE arguments are not a tuple at offset ${at}`);
          this.stack.push(callable.reduce(args));
          break;
        }
        case 0x81: {
          const args = this.pop();
          const cls = this.pop();
          if (!(this.isGlobal(cls) && cls.construct !== undefined)) this.fail(`NEWOBJ on ${this.describe(cls)} at offset ${at}`);
          if (!Array.isArray(args)) this.fail(`NEWOBJ arguments are not a tuple at offset ${at}`);
          this.stack.push(cls.construct(args));
          break;
        }
        case 0x62: {
          const state = this.pop();
          const target = this.top();
          if (target instanceof PickleObject) target.state = state;
          else if (!(target instanceof Map)) this.fail(`BUILD on ${this.describe(target)} at offset ${at}`);
          // An OrderedDict's BUILD carries its instance attributes (state_dict `_metadata`), which are not tensors.
          break;
        }
        case 0x51: {
          const pid = this.pop();
          if (this.options.persistentLoad === undefined) this.fail(`persistent id at offset ${at} but no storage resolver`);
          this.stack.push(this.options.persistentLoad(pid));
          break;
        }
        default:
          this.fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}`);
      }
    }
  }
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** A little-endian two's-complement integer; a number when it is safe, else a bigint. */
function littleEndianSigned(bytes: Uint8Array): number | bigint {
  if (bytes.byteLength === 0) return 0;
  let value = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.byteLength - 1]! & 0x80) value -= 1n << BigInt(8 * bytes.byteLength);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}
