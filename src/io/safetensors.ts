/**
 * A strict safetensors reader and writer.
 *
 * The npm package `safetensors` (0.0.1) is a small browser snippet with no bounds checks and no writer, so the
 * format (https://github.com/huggingface/safetensors, "Format") is implemented here: an 8-byte little-endian
 * header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
 * then the data section, which the tensors must cover exactly, in order, without gaps or overlap.
 * Every defect is a `FileFormatError` naming the file and the defect, raised before any allocation sized by
 * a number read from the file.
 *
 * `readSafetensors` holds the whole file in memory; `openSafetensors` validates the same header but reads each
 * tensor from the file when it is asked for, so loading a model needs no more host memory than its largest tensor.
 */
import * as fsSync from 'node:fs';
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

/** A data section that stays on disk: byte ranges are read from the file on demand. */
export interface DataSectionReader {
  readonly byteLength: number;
  /** Fills `target` with the data section's bytes from `begin` on. */
  readInto(begin: number, target: Uint8Array): void;
}

export class SafetensorsFile {
  readonly source: string;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly tensors: Map<string, TensorInfo>;
  private readonly data: Uint8Array | DataSectionReader;

  constructor(source: string, metadata: Record<string, string>, tensors: Map<string, TensorInfo>, data: Uint8Array | DataSectionReader) {
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

  /**
   * The raw little-endian bytes of a tensor: a view into the file's bytes when it is held in memory (no copy),
   * else a fresh array read from the file.
   */
  getBytes(key: string): Uint8Array {
    const { begin, end } = this.info(key);
    if (this.data instanceof Uint8Array) return this.data.subarray(begin, end);
    const out = new Uint8Array(end - begin);
    this.data.readInto(begin, out);
    return out;
  }

  /**
   * The tensor as float32, converting from any stored dtype. A view when the file is in memory and the tensor is
   * stored as aligned F32; read straight into the result when an F32 file stays on disk.
   */
  getFloat32(key: string): Float32Array {
    const info = this.info(key);
    const n = elementCount(info.shape);
    if (info.dtype === 'F32' && this.data instanceof Uint8Array) {
      const bytes = this.getBytes(key);
      return bytes.byteOffset % 4 === 0
        ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
        : new Float32Array(copyBytes(bytes).buffer, 0, n);
    }
    return this.readFloat32Into(key, new Float32Array(n));
  }

  /**
   * The tensor as float32 (converting from any stored dtype) written into the start of `target`, which must hold
   * at least its element count; returns that filled view. Lets a loop over tensors reuse one buffer.
   */
  readFloat32Into(key: string, target: Float32Array): Float32Array {
    const info = this.info(key);
    const n = elementCount(info.shape);
    if (target.length < n) {
      throw new InvalidArgumentError(`${this.source}: tensor '${key}' has ${n} values but the target holds ${target.length}`);
    }
    const out = target.subarray(0, n);
    if (info.dtype === 'F32') {
      const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      if (this.data instanceof Uint8Array) outBytes.set(this.getBytes(key));
      else this.data.readInto(info.begin, outBytes);
      return out;
    }
    const bytes = this.getBytes(key);
    switch (info.dtype) {
      case 'F16': {
        const half = typedView(Uint16Array, bytes, n);
        const table = halfTable();
        for (let i = 0; i < n; i++) out[i] = table[half[i]!]!;
        return out;
      }
      case 'BF16': {
        const half = typedView(Uint16Array, bytes, n);
        // bfloat16 is the upper half of a float32's bits.
        const bits = new Uint32Array(out.buffer, out.byteOffset, n);
        for (let i = 0; i < n; i++) bits[i] = half[i]! << 16;
        return out;
      }
      case 'F64':
        out.set(typedView(Float64Array, bytes, n));
        return out;
      case 'I64': {
        const wide = typedView(BigInt64Array, bytes, n);
        for (let i = 0; i < n; i++) out[i] = Number(wide[i]!);
        return out;
      }
      case 'I32':
        out.set(typedView(Int32Array, bytes, n));
        return out;
      case 'U8':
      case 'BOOL':
        out.set(bytes);
        return out;
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

let halfValues: Float32Array | undefined;

/** Every binary16 bit pattern's float32 value (256 kB, built on first use): fp16 files convert by lookup. */
function halfTable(): Float32Array {
  if (halfValues === undefined) {
    halfValues = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) halfValues[h] = halfToFloat(h);
  }
  return halfValues;
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
  const fail = failureIn(source);
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(headerLength);
  if (8 + n > bytes.byteLength) fail(`header length ${n} runs past the end of the file (${bytes.byteLength} bytes)`);
  const data = bytes.subarray(8 + n);
  const { metadata, tensors } = parseHeader(bytes.subarray(8, 8 + n), data.byteLength, fail);
  return new SafetensorsFile(source, metadata, tensors, data);
}

type Fail = (defect: string) => never;

function failureIn(source: string): Fail {
  return (defect: string): never => {
    throw new FileFormatError(source, `invalid safetensors file: ${defect}`);
  };
}

/** The header's metadata and tensor table, checked against a data section of `dataLength` bytes. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, fail: Fail): { metadata: Record<string, string>; tensors: Map<string, TensorInfo> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
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
  if (cursor !== dataLength) {
    fail(`tensors cover ${cursor} bytes but the data section holds ${dataLength} bytes (truncated or trailing data)`);
  }
  return { metadata, tensors: new Map(tensors) };
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

async function openForReading(path: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'safetensors file');
    throw new FileFormatError(path, `cannot open (${(err as Error).message})`, { cause: err });
  }
}

/** The header length from the 8-byte prefix, checked against the file size before anything is allocated. */
async function headerLengthOf(handle: fs.FileHandle, size: number, path: string): Promise<number> {
  if (size < 8) throw new FileFormatError(path, `invalid safetensors file: file is ${size} bytes, shorter than the 8-byte header length`);
  const prefix = Buffer.alloc(8);
  await readFully(handle, prefix, 0, path, size);
  const headerLength = prefix.readBigUInt64LE(0);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
    throw new FileFormatError(path, `invalid safetensors file: header length ${headerLength} does not fit in a ${size}-byte file (limit ${MAX_HEADER_BYTES})`);
  }
  return Number(headerLength);
}

async function readFully(handle: fs.FileHandle, target: Uint8Array, position: number, path: string, size: number): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const { bytesRead } = await handle.read(target, done, target.byteLength - done, position + done);
    if (bytesRead === 0) throw new FileFormatError(path, `file shrank while reading (${position + done} of ${size} bytes)`);
    done += bytesRead;
  }
}

/** Reads and validates a safetensors file. The size is checked against the header before the body is read. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const handle = await openForReading(path);
  try {
    const { size } = await handle.stat();
    await headerLengthOf(handle, size, path);
    // One allocation of the file's real size; tensors are views into it.
    const bytes = Buffer.allocUnsafe(size);
    await readFully(handle, bytes, 0, path, size);
    return parseSafetensors(bytes, path);
  } finally {
    await handle.close();
  }
}

/**
 * Validates a safetensors file's header as strictly as `readSafetensors` and leaves the tensors on disk: each
 * `getFloat32`/`getBytes` reads that one tensor with positional reads. The file must not change afterwards; a
 * read that finds it replaced, resized or modified is a `FileFormatError`.
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const handle = await openForReading(path);
  try {
    const stats = await handle.stat();
    const n = await headerLengthOf(handle, stats.size, path);
    const header = Buffer.allocUnsafe(n);
    await readFully(handle, header, 8, path, stats.size);
    const dataLength = stats.size - 8 - n;
    const { metadata, tensors } = parseHeader(header, dataLength, failureIn(path));
    return new SafetensorsFile(path, metadata, tensors, new FileDataSection(path, 8 + n, dataLength, stats));
  } finally {
    await handle.close();
  }
}

/** Positional reads beyond this are split, well inside what one `read` call accepts. */
const READ_CHUNK = 1 << 30;

/**
 * A data section read from its file. Synchronous so that `getFloat32` keeps its signature; each read opens the
 * file, checks it is still the one whose header was validated, and closes it again, so nothing needs closing.
 */
class FileDataSection implements DataSectionReader {
  private readonly identity: { dev: number; ino: number; size: number; mtimeMs: number };

  constructor(
    private readonly path: string,
    private readonly offset: number,
    readonly byteLength: number,
    stats: { dev: number; ino: number; size: number; mtimeMs: number },
  ) {
    this.identity = { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
  }

  readInto(begin: number, target: Uint8Array): void {
    if (begin < 0 || begin + target.byteLength > this.byteLength) {
      throw new InvalidArgumentError(`${this.path}: bytes [${begin}, ${begin + target.byteLength}) are outside the ${this.byteLength}-byte data section`);
    }
    let fd: number;
    try {
      fd = fsSync.openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(this.path, 'safetensors file');
      throw new FileFormatError(this.path, `cannot open (${(err as Error).message})`, { cause: err });
    }
    try {
      const now = fsSync.fstatSync(fd);
      const was = this.identity;
      if (now.dev !== was.dev || now.ino !== was.ino || now.size !== was.size || now.mtimeMs !== was.mtimeMs) {
        throw new FileFormatError(this.path, 'changed on disk since its header was read (replaced, resized or modified)');
      }
      let done = 0;
      while (done < target.byteLength) {
        const length = Math.min(target.byteLength - done, READ_CHUNK);
        const read = fsSync.readSync(fd, target, done, length, this.offset + begin + done);
        if (read === 0) throw new FileFormatError(this.path, `file shrank while reading (${this.offset + begin + done} of ${was.size} bytes)`);
        done += read;
      }
    } finally {
      fsSync.closeSync(fd);
    }
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
