/**
 * Reads PyTorch checkpoints (`pytorch_model.bin`, `*.pth`, `*.pt`) without running any of their code.
 *
 * Three containers are understood (torch/serialization.py and torch/csrc/jit/serialization/):
 * - the zip format of `torch.save` (torch >= 1.6): `<prefix>/data.pkl` plus one stored entry per storage in
 *   `<prefix>/data/<key>`;
 * - TorchScript archives of `torch.jit.save` (e.g. OpenAI's `ViT-B-16.pt`): the same layout, where `data.pkl`
 *   holds the module tree as `__torch__.*` objects whose tensor attributes become dotted keys;
 * - the legacy stream of `_use_new_zipfile_serialization=False`: five pickles (magic number, protocol version,
 *   system info, the object, the storage keys) followed by each storage as an int64 element count and its bytes.
 * The pickles are read by `pickle.ts` with an allowlist of tensor-rebuild globals; tensors stay views of the one
 * file buffer until a caller asks for one.
 */
import { promises as fs } from 'node:fs';
import { FileFormatError, FileNotFoundError, UnsupportedError } from '../errors.js';
import { type PickleGlobal, PickleObject, unpickle } from './pickle.js';
import { type DType, DTYPE_SIZE, elementCount, SafetensorsFile } from './safetensors.js';
import { looksLikeZip, ZipArchive } from './zip.js';

export type TorchCheckpointFormat = 'zip' | 'torchscript' | 'legacy';

class Storage {
  constructor(
    readonly dtype: DType,
    readonly numel: number,
    /** Little-endian bytes of the whole storage, resolved once the container has located them. */
    readonly bytes: () => Uint8Array,
  ) {}
}

class TensorRecord {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** The tensors of a checkpoint, by dotted state-dict key. Same reading interface as `SafetensorsFile`. */
export class TorchCheckpoint {
  readonly source: string;
  readonly format: TorchCheckpointFormat;
  private readonly tensors: Map<string, TensorRecord>;

  constructor(source: string, format: TorchCheckpointFormat, tensors: Map<string, TensorRecord>) {
    this.source = source;
    this.format = format;
    this.tensors = tensors;
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(key: string): boolean {
    return this.tensors.has(key);
  }

  info(key: string): { dtype: DType; shape: number[] } {
    const record = this.record(key);
    return { dtype: record.storage.dtype, shape: [...record.shape] };
  }

  /** The tensor's elements in row-major order as little-endian bytes (a view when the tensor is contiguous). */
  getBytes(key: string): Uint8Array {
    return contiguousBytes(this.source, key, this.record(key));
  }

  /** The tensor as float32, converting from any stored dtype. */
  getFloat32(key: string): Float32Array {
    const { storage, shape } = this.record(key);
    return singleTensor(this.source, key, storage.dtype, shape, this.getBytes(key)).getFloat32(key);
  }

  /** The tensor as int32 (from integer dtypes); values outside the int32 range are an error. */
  getInt32(key: string): Int32Array {
    const { storage, shape } = this.record(key);
    return singleTensor(this.source, key, storage.dtype, shape, this.getBytes(key)).getInt32(key);
  }

  private record(key: string): TensorRecord {
    const record = this.tensors.get(key);
    if (record === undefined) throw new FileFormatError(this.source, `checkpoint has no tensor named '${key}'`);
    return record;
  }
}

/** One tensor presented as a safetensors file, so the dtype conversions are the safetensors reader's. */
export function singleTensor(source: string, key: string, dtype: DType, shape: readonly number[], bytes: Uint8Array): SafetensorsFile {
  const info = { dtype, shape: [...shape], begin: 0, end: bytes.byteLength };
  return new SafetensorsFile(source, {}, new Map([[key, info]]), bytes);
}

/** Reads a checkpoint file into one buffer and parses it. */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'PyTorch checkpoint');
    throw new FileFormatError(path, `cannot read (${(err as Error).message})`, { cause: err });
  }
  return parseTorchCheckpoint(bytes, path);
}

/** Parses a checkpoint held in memory; `source` names it in errors. */
export function parseTorchCheckpoint(bytes: Uint8Array, source: string): TorchCheckpoint {
  if (looksLikeZip(bytes)) return parseZipCheckpoint(ZipArchive.open(bytes, source), source);
  if (bytes.byteLength > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new UnsupportedError(`${source}: tar-format checkpoints (PyTorch < 0.4) are not supported; re-save the weights with a current torch.save`);
  }
  if (bytes.byteLength >= 2 && bytes[0] === 0x80) return parseLegacyCheckpoint(bytes, source);
  throw new FileFormatError(source, 'not a PyTorch checkpoint (neither a zip archive nor a pickle stream)');
}

function parseZipCheckpoint(archive: ZipArchive, source: string): TorchCheckpoint {
  const dataPickles = archive.names().filter((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  if (dataPickles.length !== 1) {
    if (archive.names().some((n) => /(^|\/)model\.json$/.test(n))) {
      throw new UnsupportedError(`${source}: TorchScript archives from PyTorch < 1.5 (model.json layout) are not supported; re-save with torch.jit.save`);
    }
    throw new FileFormatError(source, `expected one data.pkl entry in the zip archive, found ${dataPickles.length}`);
  }
  const prefix = dataPickles[0]!.slice(0, -'data.pkl'.length);
  const byteorder = `${prefix}byteorder`;
  if (archive.has(byteorder)) {
    const order = new TextDecoder().decode(archive.read(byteorder)).trim();
    if (order !== 'little') throw new UnsupportedError(`${source}: byte order '${order}' is not supported (little-endian only)`);
  }
  const torchScript = archive.has(`${prefix}constants.pkl`) || archive.names().some((n) => n.startsWith(`${prefix}code/`));
  const persistentLoad = (pid: unknown): Storage => {
    const { dtype, key, numel } = parseStoragePid(pid, source);
    const name = `${prefix}data/${key}`;
    if (!archive.has(name)) throw new FileFormatError(source, `storage '${key}' has no entry '${name}'`);
    const size = archive.entry(name).uncompressedSize;
    const needed = numel * DTYPE_SIZE[dtype];
    if (size < needed) throw new FileFormatError(source, `storage '${key}' holds ${size} bytes but ${numel} ${dtype} elements need ${needed}`);
    let cached: Uint8Array | undefined;
    return new Storage(dtype, numel, () => (cached ??= archive.read(name).subarray(0, needed)));
  };
  const { value } = unpickle(archive.read(dataPickles[0]!, { verify: true }), {
    source: `${source} (${dataPickles[0]})`,
    findGlobal: torchGlobals(source, torchScript),
    persistentLoad,
  });
  return new TorchCheckpoint(source, torchScript ? 'torchscript' : 'zip', collectTensors(value, source));
}

function parseLegacyCheckpoint(bytes: Uint8Array, source: string): TorchCheckpoint {
  const plain = { source, findGlobal: () => undefined };
  const magic = unpickle(bytes, plain);
  if (magic.value !== LEGACY_MAGIC) throw new FileFormatError(source, 'not a PyTorch checkpoint: the legacy magic number is missing');
  const protocol = unpickle(bytes, plain, magic.end);
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new UnsupportedError(`${source}: legacy serialization protocol ${String(protocol.value)} is not supported (expected ${LEGACY_PROTOCOL})`);
  }
  const sysInfo = unpickle(bytes, plain, protocol.end);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new UnsupportedError(`${source}: big-endian checkpoints are not supported`);
  }
  const storages = new Map<string, { dtype: DType; numel: number; data?: Uint8Array }>();
  const persistentLoad = (pid: unknown): Storage => {
    const { dtype, key, numel, view } = parseStoragePid(pid, source);
    let root = storages.get(key);
    if (root === undefined) {
      root = { dtype, numel };
      storages.set(key, root);
    }
    const base = root;
    const offset = view?.offset ?? 0;
    const count = view?.numel ?? numel;
    return new Storage(dtype, count, () => {
      if (base.data === undefined) throw new FileFormatError(source, `storage '${key}' is referenced but its data is missing`);
      const size = DTYPE_SIZE[dtype];
      return base.data.subarray(offset * size, (offset + count) * size);
    });
  };
  const main = unpickle(bytes, { source, findGlobal: torchGlobals(source, false), persistentLoad }, sysInfo.end);
  const keyList = unpickle(bytes, plain, main.end);
  if (!Array.isArray(keyList.value) || !keyList.value.every((k) => typeof k === 'string')) {
    throw new FileFormatError(source, 'legacy checkpoint: the storage key list is malformed');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keyList.end;
  for (const key of keyList.value as string[]) {
    const storage = storages.get(key);
    if (storage === undefined) throw new FileFormatError(source, `legacy checkpoint: storage '${key}' is listed but never used`);
    if (pos + 8 > bytes.byteLength) throw new FileFormatError(source, `legacy checkpoint: truncated before storage '${key}'`);
    const count = view.getBigInt64(pos, true);
    const byteLength = BigInt(DTYPE_SIZE[storage.dtype]) * count;
    if (count < 0n || byteLength > BigInt(bytes.byteLength - pos - 8)) {
      throw new FileFormatError(source, `legacy checkpoint: storage '${key}' claims ${count} elements, more than the ${bytes.byteLength - pos - 8} bytes left`);
    }
    if (Number(count) !== storage.numel) {
      throw new FileFormatError(source, `legacy checkpoint: storage '${key}' has ${count} elements, its reference says ${storage.numel}`);
    }
    storage.data = bytes.subarray(pos + 8, pos + 8 + Number(byteLength));
    pos += 8 + Number(byteLength);
  }
  return new TorchCheckpoint(source, 'legacy', collectTensors(main.value, source));
}

/** Persistent ids are `('storage', <StorageType>, key, location, numel[, view_metadata])`. */
function parseStoragePid(pid: unknown, source: string): { dtype: DType; key: string; numel: number; view?: { offset: number; numel: number } } {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new FileFormatError(source, `unsupported persistent id ${describePid(pid)} (only tensor storages are supported)`);
  }
  const [, type, key, , numel, viewMetadata] = pid as unknown[];
  if (!(type instanceof StorageType)) throw new FileFormatError(source, 'storage persistent id without a storage type');
  if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw new FileFormatError(source, `malformed storage persistent id ${describePid(pid)}`);
  }
  let view: { offset: number; numel: number } | undefined;
  if (Array.isArray(viewMetadata)) {
    const [, offset, size] = viewMetadata as unknown[];
    if (typeof offset !== 'number' || typeof size !== 'number' || offset < 0 || size < 0 || offset + size > numel) {
      throw new FileFormatError(source, `malformed storage view ${describePid(pid)}`);
    }
    view = { offset, numel: size };
  }
  return { dtype: type.dtype, key, numel, view };
}

function describePid(pid: unknown): string {
  try {
    return JSON.stringify(pid, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof StorageType ? v.name : v)) ?? String(pid);
  } catch {
    // Too deeply nested for JSON.stringify, and String() recurses the same way.
    return Array.isArray(pid) ? `a ${pid.length}-element tuple nested too deeply to print` : typeof pid;
  }
}

class StorageType implements PickleGlobal {
  constructor(
    readonly name: string,
    readonly dtype: DType,
  ) {}
}

class Rebuilder implements PickleGlobal {
  constructor(
    readonly name: string,
    readonly reduce: (args: unknown[]) => unknown,
  ) {}
}

class ScriptClass implements PickleGlobal {
  constructor(readonly name: string) {}
  construct(): PickleObject {
    return new PickleObject(this.name);
  }
}

/** A class named only as a type tag (`torch.Tensor` in `_rebuild_from_type_v2`); it cannot be called. */
class TypeTag implements PickleGlobal {
  constructor(readonly name: string) {}
}

/**
 * The allowlist: tensor and parameter rebuilders, storage types and OrderedDict. TorchScript archives may also name
 * their own `__torch__.*` module classes (which only carry state) and the list helpers of `torch.jit._pickle`.
 */
function torchGlobals(source: string, torchScript: boolean): (module: string, name: string) => PickleGlobal | undefined {
  const malformed = (what: string): never => {
    throw new FileFormatError(source, `invalid pickle: malformed arguments to ${what}`);
  };
  const rebuildTensor = (name: string): Rebuilder =>
    new Rebuilder(name, (args) => {
      const [storage, offset, shape, stride] = args;
      if (!(storage instanceof Storage) || !Number.isSafeInteger(offset) || (offset as number) < 0) malformed(name);
      if (!isIntList(shape) || !isIntList(stride) || shape.length !== stride.length) malformed(name);
      return new TensorRecord(storage as Storage, offset as number, [...(shape as number[])], [...(stride as number[])]);
    });
  const passThrough = (name: string): Rebuilder => new Rebuilder(name, (args) => args[0]);
  const allowed = new Map<string, PickleGlobal>();
  const add = (global: PickleGlobal): void => void allowed.set(global.name, global);
  add(rebuildTensor('torch._utils._rebuild_tensor_v2'));
  add(rebuildTensor('torch._utils._rebuild_tensor'));
  add(passThrough('torch._utils._rebuild_parameter'));
  add(passThrough('torch._utils._rebuild_parameter_with_state'));
  add(
    new Rebuilder('torch._tensor._rebuild_from_type_v2', (args) => {
      const [func, , inner] = args;
      if (!(func instanceof Rebuilder) || !Array.isArray(inner)) return malformed('torch._tensor._rebuild_from_type_v2');
      return func.reduce(inner);
    }),
  );
  add(
    new Rebuilder('collections.OrderedDict', (args) => {
      const dict = new Map<unknown, unknown>();
      if (Array.isArray(args[0])) for (const pair of args[0]) if (Array.isArray(pair)) dict.set(pair[0], pair[1]);
      return dict;
    }),
  );
  add(new TypeTag('torch.Tensor'));
  add(new TypeTag('torch.nn.parameter.Parameter'));
  for (const [n, dtype] of Object.entries(STORAGE_DTYPES)) add(new StorageType(`torch.${n}`, dtype));
  if (torchScript) {
    for (const n of ['build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist', 'restore_type_tag']) {
      add(passThrough(`torch.jit._pickle.${n}`));
    }
  }
  return (module, name) => {
    const found = allowed.get(`${module}.${name}`);
    if (found !== undefined) return found;
    if (torchScript && (module === '__torch__' || module.startsWith('__torch__.'))) return new ScriptClass(`${module}.${name}`);
    return undefined;
  };
}

function isIntList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0);
}

/**
 * Flattens the unpickled object to `{dotted key -> tensor}`: nested dicts and TorchScript module objects contribute
 * their tensor-valued entries; other values (ints, flags, None, `_metadata`) are not weights and are left out.
 */
function collectTensors(root: unknown, source: string): Map<string, TensorRecord> {
  const out = new Map<string, TensorRecord>();
  // A pickle can make a container hold itself (memo references); each container is walked once.
  const seen = new Set<unknown>();
  const visit = (value: unknown, prefix: string, depth: number): void => {
    if (depth > 64) throw new FileFormatError(source, 'object nesting is deeper than 64 levels');
    if (value instanceof TensorRecord) {
      if (prefix === '') throw new FileFormatError(source, 'the checkpoint is a single tensor, not a state dict');
      validateTensor(source, prefix, value);
      out.set(prefix, value);
      return;
    }
    const entries = value instanceof PickleObject ? value.state : value;
    if (!(entries instanceof Map) || seen.has(entries)) return;
    seen.add(entries);
    for (const [k, v] of entries) {
      if (typeof k !== 'string') continue;
      visit(v, prefix === '' ? k : `${prefix}.${k}`, depth + 1);
    }
  };
  visit(root, '', 0);
  if (out.size === 0) throw new FileFormatError(source, 'no tensors found (expected a state dict or a TorchScript module)');
  return out;
}

function validateTensor(source: string, key: string, t: TensorRecord): void {
  const n = elementCount(t.shape);
  if (n === 0) return;
  // Zero strides (expanded views) could describe more elements than the file holds; checkpoints never store them.
  if (n > t.storage.numel) {
    throw new FileFormatError(source, `tensor '${key}' [${t.shape.join(', ')}] has more elements than its ${t.storage.numel}-element storage`);
  }
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
  if (last >= t.storage.numel) {
    throw new FileFormatError(source, `tensor '${key}' [${t.shape.join(', ')}] at offset ${t.offset} reaches element ${last} of a ${t.storage.numel}-element storage`);
  }
}

function contiguousBytes(source: string, key: string, t: TensorRecord): Uint8Array {
  const size = DTYPE_SIZE[t.storage.dtype];
  const n = elementCount(t.shape);
  const storage = t.storage.bytes();
  if (n === 0) return new Uint8Array(0);
  if (storage.byteLength < t.storage.numel * size) {
    throw new FileFormatError(source, `tensor '${key}': its storage holds ${storage.byteLength} bytes, ${t.storage.numel} ${t.storage.dtype} elements need ${t.storage.numel * size}`);
  }
  if (isRowMajor(t.shape, t.stride)) return storage.subarray(t.offset * size, (t.offset + n) * size);
  // A non-contiguous view (e.g. a saved transpose): gather element by element in row-major order.
  const out = new Uint8Array(n * size);
  const index = new Array<number>(t.shape.length).fill(0);
  let src = t.offset;
  for (let i = 0; i < n; i++) {
    out.set(storage.subarray(src * size, src * size + size), i * size);
    for (let d = t.shape.length - 1; d >= 0; d--) {
      index[d]!++;
      src += t.stride[d]!;
      if (index[d]! < t.shape[d]!) break;
      src -= t.stride[d]! * t.shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}
