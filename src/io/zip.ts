/**
 * A read-only zip reader for PyTorch checkpoints (APPNOTE 6.3.10, sections 4.3.7-4.3.16 and the zip64 records).
 *
 * PyTorch writes tensor storages as stored (uncompressed) entries aligned to 64 bytes, so a stored entry is
 * returned as a view into the archive's one buffer, never copied. Deflated entries (TorchScript `code/` files)
 * are inflated with an output bound equal to their declared size. Every offset and size read from the archive is
 * checked against the real byte length before it is used.
 */
import { crc32, inflateRawSync } from 'node:zlib';
import { FileFormatError, UnsupportedError } from '../errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD64_LOCATOR_SIGNATURE = 0x07064b50;
const EOCD64_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

/** True when the bytes start like a zip archive (a local file header or an empty archive's end record). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 4) return false;
  const signature = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return signature === LOCAL_SIGNATURE || signature === EOCD_SIGNATURE;
}

export class ZipArchive {
  readonly source: string;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly byName: Map<string, ZipEntry>;

  private constructor(source: string, bytes: Uint8Array, entries: Map<string, ZipEntry>) {
    this.source = source;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.byName = entries;
  }

  /** Parses the central directory of an archive held in memory; `source` names it in errors. */
  static open(bytes: Uint8Array, source: string): ZipArchive {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail = (defect: string): never => {
      throw new FileFormatError(source, `invalid zip archive: ${defect}`);
    };
    const eocd = findEndOfCentralDirectory(view);
    if (eocd < 0) fail(`end-of-central-directory record not found in ${bytes.byteLength} bytes (truncated or not a zip file)`);
    let count = view.getUint16(eocd + 10, true);
    let directorySize = view.getUint32(eocd + 12, true);
    let directoryOffset = view.getUint32(eocd + 16, true);
    if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || view.getUint32(locator, true) !== EOCD64_LOCATOR_SIGNATURE) fail('zip64 values without a zip64 locator');
      const record = readUint64(view, locator + 8, fail, 'zip64 end record offset');
      if (record + 56 > bytes.byteLength || view.getUint32(record, true) !== EOCD64_SIGNATURE) {
        fail(`zip64 end record at ${record} is missing or runs past the end of the file`);
      }
      count = readUint64(view, record + 32, fail, 'entry count');
      directorySize = readUint64(view, record + 40, fail, 'central directory size');
      directoryOffset = readUint64(view, record + 48, fail, 'central directory offset');
    }
    if (directoryOffset + directorySize > bytes.byteLength) {
      fail(`central directory (${directorySize} bytes at ${directoryOffset}) runs past the end of the ${bytes.byteLength}-byte file`);
    }
    // Each central record is at least 46 bytes, which bounds the count before anything is allocated for it.
    if (count * 46 > directorySize) fail(`${count} entries cannot fit in a ${directorySize}-byte central directory`);
    const entries = new Map<string, ZipEntry>();
    let p = directoryOffset;
    const end = directoryOffset + directorySize;
    for (let i = 0; i < count; i++) {
      if (p + 46 > end || view.getUint32(p, true) !== CENTRAL_SIGNATURE) fail(`central directory record ${i} is malformed`);
      const flags = view.getUint16(p + 8, true);
      const method = view.getUint16(p + 10, true);
      const crc = view.getUint32(p + 16, true);
      let compressedSize = view.getUint32(p + 20, true);
      let uncompressedSize = view.getUint32(p + 24, true);
      const nameLength = view.getUint16(p + 28, true);
      const extraLength = view.getUint16(p + 30, true);
      const commentLength = view.getUint16(p + 32, true);
      let localHeaderOffset = view.getUint32(p + 42, true);
      const recordEnd = p + 46 + nameLength + extraLength + commentLength;
      if (recordEnd > end) fail(`central directory record ${i} runs past the directory`);
      const name = new TextDecoder('utf-8').decode(bytes.subarray(p + 46, p + 46 + nameLength));
      if (flags & 0x1) throw new UnsupportedError(`${source}: zip entry '${name}' is encrypted`);
      // Zip64 extended information: present fields appear in this fixed order, only for values saturated in the record.
      let q = p + 46 + nameLength;
      const extraEnd = q + extraLength;
      while (q + 4 <= extraEnd) {
        const id = view.getUint16(q, true);
        const size = view.getUint16(q + 2, true);
        if (q + 4 + size > extraEnd) fail(`extra field of '${name}' runs past its record`);
        if (id === 0x0001) {
          let r = q + 4;
          const take = (what: string): number => {
            if (r + 8 > q + 4 + size) fail(`zip64 field of '${name}' lacks the ${what}`);
            const value = readUint64(view, r, fail, what);
            r += 8;
            return value;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = take('uncompressed size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
        }
        q += 4 + size;
      }
      if (localHeaderOffset + 30 > bytes.byteLength) fail(`local header of '${name}' at ${localHeaderOffset} is past the end of the file`);
      if (entries.has(name)) fail(`duplicate entry '${name}'`);
      entries.set(name, { name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset });
      p = recordEnd;
    }
    return new ZipArchive(source, bytes, entries);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry {
    const entry = this.byName.get(name);
    if (entry === undefined) throw new FileFormatError(this.source, `zip archive has no entry '${name}'`);
    return entry;
  }

  /**
   * The content of an entry. Stored entries are views into the archive buffer; `verify` checks the CRC-32
   * (off by default for large tensor storages, where it would read every byte once more).
   */
  read(name: string, options: { verify?: boolean } = {}): Uint8Array {
    const entry = this.entry(name);
    const { localHeaderOffset: h } = entry;
    if (this.view.getUint32(h, true) !== LOCAL_SIGNATURE) {
      throw new FileFormatError(this.source, `invalid zip archive: local header of '${name}' at ${h} has a bad signature`);
    }
    // The local extra field may differ in length from the central one (PyTorch pads it for alignment).
    const start = h + 30 + this.view.getUint16(h + 26, true) + this.view.getUint16(h + 28, true);
    if (start + entry.compressedSize > this.bytes.byteLength) {
      throw new FileFormatError(
        this.source,
        `invalid zip archive: entry '${name}' (${entry.compressedSize} bytes at ${start}) runs past the end of the ${this.bytes.byteLength}-byte file (truncated)`,
      );
    }
    const raw = this.bytes.subarray(start, start + entry.compressedSize);
    let content: Uint8Array;
    if (entry.method === METHOD_STORED) {
      if (entry.compressedSize !== entry.uncompressedSize) {
        throw new FileFormatError(this.source, `invalid zip archive: stored entry '${name}' has different compressed and uncompressed sizes`);
      }
      content = raw;
    } else if (entry.method === METHOD_DEFLATE) {
      try {
        content = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (err) {
        throw new FileFormatError(this.source, `invalid zip archive: entry '${name}' does not inflate (${(err as Error).message})`, { cause: err });
      }
      if (content.byteLength !== entry.uncompressedSize) {
        throw new FileFormatError(this.source, `invalid zip archive: entry '${name}' inflates to ${content.byteLength} bytes, declared ${entry.uncompressedSize}`);
      }
    } else {
      throw new UnsupportedError(`${this.source}: zip entry '${name}' uses compression method ${entry.method} (only stored and deflate are supported)`);
    }
    if ((options.verify ?? false) && crc32(content) >>> 0 !== entry.crc32) {
      throw new FileFormatError(this.source, `invalid zip archive: CRC-32 mismatch in entry '${name}'`);
    }
    return content;
  }
}

function findEndOfCentralDirectory(view: DataView): number {
  const last = view.byteLength - EOCD_SIZE;
  const first = Math.max(0, last - MAX_COMMENT);
  for (let p = last; p >= first; p--) {
    if (view.getUint32(p, true) === EOCD_SIGNATURE && p + EOCD_SIZE + view.getUint16(p + 20, true) === view.byteLength) return p;
  }
  return -1;
}

function readUint64(view: DataView, offset: number, fail: (defect: string) => never, what: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${value} is out of range`);
  return Number(value);
}
