/**
 * Reads what the loader must know before decoding pixels: container format, size, channel layout and the EXIF
 * orientation PIL would apply. Pure byte parsing (no Node APIs), so the size check happens before any pixel
 * buffer is allocated.
 */
import { ImageDecodeError } from '../errors.js';
import { readGifLayout } from './gif.js';
import { readTiffSize } from './tiff.js';

export type ImageFormat = 'png' | 'jpeg' | 'bmp' | 'gif' | 'tiff' | 'webp';

export interface ImageHeader {
  readonly format: ImageFormat;
  readonly width: number;
  readonly height: number;
  /** true when the stored samples are grey (PNG colour types 0/4, one-component JPEG) */
  readonly grey: boolean;
  /** PNG sample depth in bits; 8 for other formats */
  readonly bitDepth: number;
  /** EXIF orientation 1-8 as PIL's `getexif()` reports it for this file; 1 when absent or outside 1-8 */
  readonly orientation: number;
}

const ORIENTATION_TAG = 0x0112;

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 6 && ascii(b, 0, 6).match(/^GIF8[79]a$/)) return 'gif';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42))) return 'tiff';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  return undefined;
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

/** Bounds-checked reads; any read past the end is a truncated file. */
class Reader {
  constructor(readonly bytes: Uint8Array, readonly source: string, readonly littleEndian = false) {}

  private check(offset: number, size: number): void {
    if (offset < 0 || offset + size > this.bytes.length) {
      throw new ImageDecodeError(this.source, `file is truncated (needed ${size} bytes at offset ${offset}, file has ${this.bytes.length})`);
    }
  }

  u8(offset: number): number {
    this.check(offset, 1);
    return this.bytes[offset]!;
  }

  u16(offset: number): number {
    this.check(offset, 2);
    const a = this.bytes[offset]!;
    const b = this.bytes[offset + 1]!;
    return this.littleEndian ? a | (b << 8) : (a << 8) | b;
  }

  u32(offset: number): number {
    this.check(offset, 4);
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + offset, 4);
    return v.getUint32(0, this.littleEndian);
  }

  i32(offset: number): number {
    this.check(offset, 4);
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + offset, 4).getInt32(0, this.littleEndian);
  }

  withEndian(littleEndian: boolean, bytes = this.bytes): Reader {
    return new Reader(bytes, this.source, littleEndian);
  }
}

/** Reads the orientation from IFD0 of an EXIF block (a TIFF structure). */
function exifIfd0Orientation(bytes: Uint8Array, source: string): number {
  const r0 = new Reader(bytes, source);
  const order = r0.u16(0);
  if (order !== 0x4949 && order !== 0x4d4d) throw new ImageDecodeError(source, 'EXIF block has no II/MM byte order mark');
  const r = r0.withEndian(order === 0x4949);
  if (r.u16(2) !== 42) throw new ImageDecodeError(source, 'EXIF block has a bad magic number');
  const ifd = r.u32(4);
  const count = r.u16(ifd);
  let orientation = 1;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = r.u16(entry);
    const type = r.u16(entry + 2);
    // SHORT (3) values sit in the first two bytes of the value field, LONG (4) fill it.
    const value = type === 3 ? r.u16(entry + 8) : type === 4 ? r.u32(entry + 8) : undefined;
    if (value !== undefined && tag === ORIENTATION_TAG) orientation = value >= 1 && value <= 8 ? value : 1;
  }
  return orientation;
}

/** EXIF payload as PIL stores it may start with "Exif\0\0"; PIL strips that prefix before parsing. */
function orientationFromExif(payload: Uint8Array, source: string): number {
  const body = payload.length >= 6 && ascii(payload, 0, 6) === 'Exif\0\0' ? payload.subarray(6) : payload;
  try {
    return exifIfd0Orientation(body, source);
  } catch {
    // PIL ignores an unreadable EXIF block (no orientation); so does the loader.
    return 1;
  }
}

function pngHeader(bytes: Uint8Array, source: string): ImageHeader {
  const r = new Reader(bytes, source);
  if (ascii(bytes, 12, 4) !== 'IHDR') throw new ImageDecodeError(source, 'PNG file does not start with an IHDR chunk');
  const width = r.u32(16);
  const height = r.u32(20);
  const bitDepth = r.u8(24);
  const colorType = r.u8(25);
  let orientation = 1;
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = r.u32(offset);
    const type = ascii(bytes, offset + 4, 4);
    if (type === 'eXIf' && offset + 8 + length <= bytes.length) {
      orientation = orientationFromExif(bytes.subarray(offset + 8, offset + 8 + length), source);
      break;
    }
    if (type === 'IEND') break;
    offset += 12 + length;
  }
  return { format: 'png', width, height, grey: colorType === 0 || colorType === 4, bitDepth, orientation };
}

function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Walks the JPEG marker segments up to the first scan; `visit` sees each segment's marker and payload range. */
function walkJpeg(bytes: Uint8Array, source: string, visit: (marker: number, start: number, end: number) => void): void {
  const r = new Reader(bytes, source);
  let offset = 2;
  for (;;) {
    if (r.u8(offset) !== 0xff) throw new ImageDecodeError(source, `JPEG marker expected at offset ${offset}`);
    let marker = r.u8(offset + 1);
    // Fill bytes (0xFF runs) may precede a marker.
    while (marker === 0xff) {
      offset++;
      marker = r.u8(offset + 1);
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2;
      continue;
    }
    if (marker === 0xd9) throw new ImageDecodeError(source, 'JPEG ends before any image data');
    const length = r.u16(offset + 2);
    if (length < 2) throw new ImageDecodeError(source, `JPEG segment at offset ${offset} has a bad length ${length}`);
    visit(marker, offset + 4, offset + 2 + length);
    if (marker === 0xda) return;
    offset += 2 + length;
  }
}

function jpegHeader(bytes: Uint8Array, source: string): ImageHeader {
  const r = new Reader(bytes, source);
  let size: { width: number; height: number; components: number } | undefined;
  let orientation: number | undefined;
  walkJpeg(bytes, source, (marker, start, end) => {
    if (isSof(marker) && size === undefined) {
      size = { height: r.u16(start + 1), width: r.u16(start + 3), components: r.u8(start + 5) };
    } else if (marker === 0xe1 && orientation === undefined && end - start >= 6 && ascii(bytes, start, 6) === 'Exif\0\0') {
      // PIL keeps the first Exif APP1 segment only.
      orientation = orientationFromExif(bytes.subarray(start, Math.min(end, bytes.length)), source);
    }
  });
  if (size === undefined) throw new ImageDecodeError(source, 'JPEG has no frame header (SOF) before its scan');
  return { format: 'jpeg', width: size.width, height: size.height, grey: size.components === 1, bitDepth: 8, orientation: orientation ?? 1 };
}

/**
 * A copy of the JPEG without its APP1 (EXIF/XMP) segments. jimp rotates JPEGs by its own EXIF reading, which does
 * not follow PIL in every case (it also honours a thumbnail IFD's orientation); stripping APP1 lets the loader
 * apply PIL's rule itself. APP1 holds no pixel data.
 */
export function stripJpegApp1(bytes: Uint8Array, source: string): Uint8Array {
  const keep: [number, number][] = [];
  let cursor = 0;
  walkJpeg(bytes, source, (marker, start, end) => {
    if (marker === 0xe1) {
      keep.push([cursor, start - 4]);
      cursor = end;
    }
  });
  if (keep.length === 0) return bytes;
  keep.push([cursor, bytes.length]);
  const total = keep.reduce((n, [a, b]) => n + (b - a), 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const [a, b] of keep) {
    out.set(bytes.subarray(a, b), at);
    at += b - a;
  }
  return out;
}

function bmpHeader(bytes: Uint8Array, source: string): ImageHeader {
  const r = new Reader(bytes, source, true);
  const dib = r.u32(14);
  const width = dib === 12 ? r.u16(18) : r.i32(18);
  const height = dib === 12 ? r.u16(20) : r.i32(22);
  // Decoders read the width as unsigned, so a negative one would become a 4-billion-pixel row.
  if (width <= 0) throw new ImageDecodeError(source, `BMP width must be positive, got ${width}`);
  // A negative height marks a top-down bitmap.
  return { format: 'bmp', width: Math.abs(width), height: Math.abs(height), grey: false, bitDepth: 8, orientation: 1 };
}

/** The size PIL gives a GIF: its logical screen grown to hold the first frame, which is what gets allocated. */
function gifHeader(bytes: Uint8Array, source: string): ImageHeader {
  const { width, height } = readGifLayout(bytes, source);
  return { format: 'gif', width, height, grey: false, bitDepth: 8, orientation: 1 };
}

/** IFD0 only: the decoder reads no other image (PIL's first frame). */
function tiffHeader(bytes: Uint8Array, source: string): ImageHeader {
  const { width, height, orientation } = readTiffSize(bytes, source);
  return { format: 'tiff', width, height, grey: false, bitDepth: 8, orientation };
}

/** Parses the header of an encoded image. Unknown or unsupported formats are an ImageDecodeError. */
export function readImageHeader(bytes: Uint8Array, source: string): ImageHeader {
  const format = sniffFormat(bytes);
  switch (format) {
    case 'png':
      return pngHeader(bytes, source);
    case 'jpeg':
      return jpegHeader(bytes, source);
    case 'bmp':
      return bmpHeader(bytes, source);
    case 'gif':
      return gifHeader(bytes, source);
    case 'tiff':
      return tiffHeader(bytes, source);
    case 'webp':
      throw new ImageDecodeError(source, 'WebP images are not supported (supported: PNG, JPEG, BMP, GIF, TIFF)');
    default:
      throw new ImageDecodeError(
        source,
        bytes.length === 0 ? 'file is empty' : 'not a recognised image (supported: PNG, JPEG, BMP, GIF, TIFF)',
      );
  }
}
