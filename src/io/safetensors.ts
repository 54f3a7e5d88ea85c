/**
 * A strict safetensors reader and writer.
 *
 * The npm package `safetensors` (0.0.1) is a small browser snippet with no bounds checks and no writer, so the
 * format (https://github.com/huggingface/safetensors, "Format") is implemented here: an 8-byte little-endian
 * header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
 * then the data section, which the tensors must cover exactly, in order, without gaps or overlap.
 * Every defect is a `FileFormatError` naming the file and the defect, raised before any allocation sized by
 * a number read from the file.
 */
import { promises as fs } from 'node:fs';
import { FileFormatError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };

/** Headers larger than this are refused (the reference implementation uses the same 100 MB bound). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

export interface WriteTensor {
  dtype: DType;
  shape: readonly number[];
  data: TensorData;
}

export class SafetensorsFile {
  readonly source: string;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly tensors: Map<string, TensorInfo>;
  private readonly data: Uint8Array;

  constructor(source: string, metadata: Record<string, string>, tensors: Map<string, TensorInfo>, data: Uint8Array) {
    this.source = source;
    this.metadata = metadata;
    this.tensors = tensors;
    this.data = data;
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(key: string): boolean {
    return this.tensors.has(key);
  }

  info(key: string): TensorInfo {
    const info = this.tensors.get(key);
    if (info === undefined) throw new InvalidArgumentError(`${this.source}: no tensor named '${key}'`);
    return info;
  }

  /** The raw little-endian bytes of a tensor, as a view into the file (no copy). */
  getBytes(key: string): Uint8Array {
    const { begin, end } = this.info(key);
    return this.data.subarray(begin, end);
  }

  /** The tensor as float32, converting from any stored dtype. A view when the stored dtype is F32 and aligned. */
  getFloat32(key: string): Float32Array {
    const info = this.info(key);
    const bytes = this.getBytes(key);
    const n = elementCount(info.shape);
    switch (info.dtype) {
      case 'F32':
        return bytes.byteOffset % 4 === 0
          ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
          : new Float32Array(copyBytes(bytes).buffer, 0, n);
      case 'F16': {
        const half = typedView(Uint16Array, bytes, n);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = halfToFloat(half[i]!);
        return out;
      }
      case 'BF16': {
        const half = typedView(Uint16Array, bytes, n);
        const bits = new Uint32Array(n);
        for (let i = 0; i < n; i++) bits[i] = half[i]! << 16;
        return new Float32Array(bits.buffer);
      }
      case 'F64':
        return Float32Array.from(typedView(Float64Array, bytes, n));
      case 'I64':
        return Float32Array.from(typedView(BigInt64Array, bytes, n), (v) => Number(v));
      case 'I32':
        return Float32Array.from(typedView(Int32Array, bytes, n));
      case 'U8':
      case 'BOOL':
        return Float32Array.from(bytes);
    }
  }

  /** The tensor as int32 (from I32, I64, U8 or BOOL); values outside the int32 range are an error. */
  getInt32(key: string): Int32Array {
    const info = this.info(key);
    const bytes = this.getBytes(key);
    const n = elementCount(info.shape);
    switch (info.dtype) {
      case 'I32':
        return typedView(Int32Array, bytes, n);
      case 'I64': {
        const wide = typedView(BigInt64Array, bytes, n);
        const out = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const v = wide[i]!;
          if (v > 2147483647n || v < -2147483648n) {
            throw new FileFormatError(this.source, `tensor '${key}': value ${v} at index ${i} does not fit in int32`);
          }
          out[i] = Number(v);
        }
        return out;
      }
      case 'U8':
      case 'BOOL':
        return Int32Array.from(bytes);
      default:
        throw new FileFormatError(this.source, `tensor '${key}': expected an integer dtype, got ${info.dtype}`);
    }
  }
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

interface TypedArrayClass<T> {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** `bytes` viewed as `n` elements of a typed array, copied first when its offset is not aligned for the type. */
function typedView<T>(type: TypedArrayClass<T>, bytes: Uint8Array, n: number): T {
  const aligned = bytes.byteOffset % type.BYTES_PER_ELEMENT === 0 ? bytes : copyBytes(bytes);
  return new type(aligned.buffer, aligned.byteOffset, n);
}

/** IEEE 754 binary16 to a JS number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A float32 value to binary16 bits, rounding to nearest even as PyTorch's `.half()` does. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (remainder > midpoint || (remainder === midpoint && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1))) half++;
  return sign | half;
}

const DTYPES = new Set<string>(Object.keys(DTYPE_SIZE));

/** Parses a whole safetensors file held in memory. `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  const fail = (defect: string): never => {
    throw new FileFormatError(source, `invalid safetensors file: ${defect}`);
  };
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(headerLength);
  if (8 + n > bytes.byteLength) fail(`header length ${n} runs past the end of the file (${bytes.byteLength} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const tensors: [string, TensorInfo][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    tensors.push([name, parseEntry(name, entry, fail)]);
  }
  // The data section must be covered exactly: sorted by offset, each tensor starts where the previous ended.
  tensors.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, info] of tensors) {
    if (info.begin !== cursor) {
      fail(info.begin < cursor ? `tensor '${name}' overlaps the previous tensor` : `gap before tensor '${name}' at byte ${cursor}`);
    }
    cursor = info.end;
  }
  if (cursor !== data.byteLength) {
    fail(`tensors cover ${cursor} bytes but the data section holds ${data.byteLength} bytes (truncated or trailing data)`);
  }
  return new SafetensorsFile(source, metadata, new Map(tensors), data);
}

function parseEntry(name: string, entry: unknown, fail: (defect: string) => never): TensorInfo {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`entry '${name}' is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !DTYPES.has(dtype)) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const info: TensorInfo = { dtype: dtype as DType, shape: [...(shape as number[])], begin: offsets![0], end: offsets![1] };
  const expected = elementCount(info.shape) * DTYPE_SIZE[info.dtype];
  if (!Number.isSafeInteger(expected) || expected !== info.end - info.begin) {
    fail(`tensor '${name}' (${info.dtype} [${info.shape.join(', ')}]) needs ${expected} bytes but its offsets span ${info.end - info.begin}`);
  }
  return info;
}

/** Reads and validates a safetensors file. The size is checked against the header before the body is read. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'safetensors file');
    throw new FileFormatError(path, `cannot open (${(err as Error).message})`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    if (size < 8) throw new FileFormatError(path, `invalid safetensors file: file is ${size} bytes, shorter than the 8-byte header length`);
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const headerLength = prefix.readBigUInt64LE(0);
    if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
      throw new FileFormatError(path, `invalid safetensors file: header length ${headerLength} does not fit in a ${size}-byte file (limit ${MAX_HEADER_BYTES})`);
    }
    // One allocation of the file's real size; tensors are views into it.
    const bytes = Buffer.allocUnsafe(size);
    let offset = 0;
    while (offset < size) {
      const { bytesRead } = await handle.read(bytes, offset, size - offset, offset);
      if (bytesRead === 0) throw new FileFormatError(path, `file shrank while reading (${offset} of ${size} bytes)`);
      offset += bytesRead;
    }
    return parseSafetensors(bytes, path);
  } finally {
    await handle.close();
  }
}

/** Serialises tensors in the given order (header padded with spaces to 8 bytes, as the reference writer does). */
export function serializeSafetensors(tensors: Record<string, WriteTensor>, metadata?: Record<string, string>): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new InvalidArgumentError(`metadata['${k}']: expected a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t.dtype in DTYPE_SIZE)) throw new InvalidArgumentError(`tensor '${name}': unsupported dtype ${String(t.dtype)}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const expected = elementCount(t.shape) * DTYPE_SIZE[t.dtype];
    if (bytes.byteLength !== expected) {
      throw new InvalidArgumentError(
        `tensor '${name}': ${t.dtype} [${t.shape.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] };
    chunks.push(bytes);
    offset += expected;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  const padding = (8 - (encoder.encode(json).byteLength % 8)) % 8;
  json += ' '.repeat(padding);
  const headerBytes = encoder.encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  return [prefix, headerBytes, ...chunks];
}

/** Writes a safetensors file atomically (temporary name, fsync, rename). */
export async function writeSafetensors(path: string, tensors: Record<string, WriteTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** Concatenates serialised chunks, for callers that want the file in memory. */
export function safetensorsBytes(tensors: Record<string, WriteTensor>, metadata?: Record<string, string>): Uint8Array {
  const chunks = serializeSafetensors(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
