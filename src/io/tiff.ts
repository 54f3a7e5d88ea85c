/**
 * TIFF decoding: the first image (IFD0) only, as PIL reads a TIFF, for the sample layouts PIL itself decodes that
 * are common in photographs and scans (see LAYOUTS), uncompressed or with LZW, Deflate or PackBits.
 *
 * A decoder of its own rather than utif2 (through jimp): utif2 follows the whole IFD chain and every sub-IFD with no
 * cycle check, loops over each entry's declared value count, decodes every IFD (the size check can only vouch for
 * IFD0), writes to stdout for tiled files and does not check LZW codes against its code table. Here only IFD0 is read,
 * only the tags decoding needs are looked at, every value array and strip is checked against the file before it is
 * read, the strip decoders fill a buffer sized from the checked image size and stop when it is full, and
 * everything else is an ImageDecodeError. Tiled files, JPEG/CCITT compression, planar (separate) samples, fill
 * order 2, associated alpha, signed, float and 32-bit samples are refused rather than decoded differently from PIL.
 */
import { Unzlib } from 'fflate';
import { ImageDecodeError } from '../errors.js';
import { TIFF_LZW, decodeLzw } from './lzw.js';

const TAG = {
  width: 256,
  height: 257,
  bitsPerSample: 258,
  compression: 259,
  photometric: 262,
  fillOrder: 266,
  stripOffsets: 273,
  orientation: 274,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  planarConfiguration: 284,
  predictor: 317,
  colorMap: 320,
  tileWidth: 322,
  tileOffsets: 324,
  extraSamples: 338,
  sampleFormat: 339,
} as const;

/** Bytes per value of the integer types (BYTE, SHORT, LONG) that the tags read here may use. */
const INT_TYPE_SIZE: Record<number, number> = { 1: 1, 3: 2, 4: 4 };

const COMPRESSION: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'Deflate', 32946: 'Deflate', 32773: 'PackBits' };

/**
 * PIL's OPEN_INFO keys this decoder accepts: photometric | bits per sample | extra samples (unsigned samples,
 * fill order 1). Photometric 0 is WhiteIsZero, 1 BlackIsZero, 2 RGB, 3 palette, 5 CMYK; extra sample 0 is
 * unspecified data (ignored, as PIL does), 2 unassociated alpha, 999 the value Corel Draw writes for alpha.
 */
const LAYOUTS = new Set([
  '0|1|', '1|1|', '0|2|', '1|2|', '0|4|', '1|4|', '0|8|', '1|8|', '1|8,8|0', '1|8,8|2', '1|16|',
  '2|8,8,8|', '2|8,8,8,8|', '2|8,8,8,8|0', '2|8,8,8,8|2', '2|8,8,8,8|999',
  '2|8,8,8,8,8|0,0', '2|8,8,8,8,8|2,0', '2|8,8,8,8,8,8|0,0,0', '2|8,8,8,8,8,8|2,0,0',
  '2|16,16,16|', '2|16,16,16,16|', '2|16,16,16,16|0', '2|16,16,16,16|2',
  '3|1|', '3|2|', '3|4|', '3|8|', '3|8,8|0', '3|8,8|2',
  '5|8,8,8,8|', '5|8,8,8,8,8|0', '5|8,8,8,8,8,8|0,0',
]);

/** PIL's MAX_SAMPLESPERPIXEL: the most samples any layout it knows has. */
const MAX_SAMPLES = 6;

interface Entry {
  readonly type: number;
  readonly count: number;
  /** Offset of the entry's 4-byte value field. */
  readonly field: number;
}

/** IFD0 of a TIFF file: its entries by tag (the last of duplicates, as PIL keeps) and bounds-checked readers. */
class Ifd0 {
  readonly littleEndian: boolean;
  private readonly entries = new Map<number, Entry>();
  private readonly view: DataView;

  constructor(readonly bytes: Uint8Array, readonly source: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.littleEndian = bytes[0] === 0x49;
    const offset = this.u32(4, 'IFD0 offset');
    const count = this.u16(offset, 'IFD0 entry count');
    this.need(offset + 2, count * 12, `IFD0 (${count} entries)`);
    for (let i = 0; i < count; i++) {
      const at = offset + 2 + i * 12;
      this.entries.set(this.u16(at, 'IFD0'), { type: this.u16(at + 2, 'IFD0'), count: this.u32(at + 4, 'IFD0'), field: at + 8 });
    }
  }

  private need(offset: number, size: number, what: string): void {
    if (offset + size > this.bytes.length) {
      throw new ImageDecodeError(this.source, `TIFF is truncated in its ${what} (needed ${size} bytes at offset ${offset}, file has ${this.bytes.length})`);
    }
  }

  private u16(offset: number, what: string): number {
    this.need(offset, 2, what);
    return this.view.getUint16(offset, this.littleEndian);
  }

  private u32(offset: number, what: string): number {
    this.need(offset, 4, what);
    return this.view.getUint32(offset, this.littleEndian);
  }

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /** The values of an integer tag; undefined when absent. Values wider than 4 bytes live at an offset in the file. */
  ints(tag: number, name: string): number[] | undefined {
    const entry = this.entries.get(tag);
    if (entry === undefined) return undefined;
    const size = INT_TYPE_SIZE[entry.type];
    if (size === undefined) throw new ImageDecodeError(this.source, `TIFF tag ${name} (${tag}) has type ${entry.type}, expected BYTE, SHORT or LONG`);
    const total = entry.count * size;
    const start = total <= 4 ? entry.field : this.u32(entry.field, `${name} tag`);
    this.need(start, total, `${name} values (${entry.count})`);
    const values = new Array<number>(entry.count);
    for (let i = 0; i < entry.count; i++) {
      const at = start + i * size;
      values[i] = size === 1 ? this.bytes[at]! : size === 2 ? this.view.getUint16(at, this.littleEndian) : this.view.getUint32(at, this.littleEndian);
    }
    return values;
  }

  /** A single-valued integer tag (PIL takes only a count of 1 as a number). */
  int(tag: number, name: string, fallback?: number): number {
    const values = this.ints(tag, name);
    if (values === undefined) {
      if (fallback === undefined) throw new ImageDecodeError(this.source, `TIFF has no ${name} tag (${tag})`);
      return fallback;
    }
    if (values.length !== 1) throw new ImageDecodeError(this.source, `TIFF tag ${name} (${tag}) has ${values.length} values, expected 1`);
    return values[0]!;
  }
}

export interface TiffSize {
  readonly width: number;
  readonly height: number;
  /** EXIF orientation 1-8; 1 when absent, not a single integer, or outside 1-8. */
  readonly orientation: number;
}

/** Size and orientation from IFD0, for the header check before any pixel buffer exists. */
export function readTiffSize(bytes: Uint8Array, source: string): TiffSize {
  const ifd = new Ifd0(bytes, source);
  let orientation = 1;
  try {
    orientation = ifd.int(TAG.orientation, 'Orientation', 1);
  } catch {
    // PIL's exif_transpose ignores an orientation it cannot use; so does the loader.
  }
  return {
    width: ifd.int(TAG.width, 'ImageWidth'),
    height: ifd.int(TAG.height, 'ImageLength'),
    orientation: orientation >= 1 && orientation <= 8 ? orientation : 1,
  };
}

interface Layout {
  readonly photometric: number;
  readonly bits: number;
  readonly samples: number;
  /** Sample index of the alpha channel, -1 for none. */
  readonly alpha: number;
}

/** PIL's reading of the sample tags (`TiffImageFile._setup`), then the layout check. */
function readLayout(ifd: Ifd0, source: string): Layout {
  const photometric = ifd.int(TAG.photometric, 'PhotometricInterpretation', 0);
  const samples = ifd.int(TAG.samplesPerPixel, 'SamplesPerPixel', 1);
  if (samples < 1 || samples > MAX_SAMPLES) throw new ImageDecodeError(source, `TIFF has ${samples} samples per pixel, expected 1-${MAX_SAMPLES}`);
  let bits = ifd.ints(TAG.bitsPerSample, 'BitsPerSample') ?? [1];
  // PIL drops extra values and repeats a single one.
  if (bits.length > samples) bits = bits.slice(0, samples);
  else if (bits.length === 1 && samples > 1) bits = new Array<number>(samples).fill(bits[0]!);
  const extras = ifd.ints(TAG.extraSamples, 'ExtraSamples') ?? [];
  const formats = ifd.ints(TAG.sampleFormat, 'SampleFormat') ?? [1];
  const fillOrder = ifd.int(TAG.fillOrder, 'FillOrder', 1);
  const key = `${photometric}|${bits.join(',')}|${extras.join(',')}`;
  if (bits.length !== samples || !LAYOUTS.has(key) || formats.some((f) => f !== 1) || fillOrder !== 1) {
    throw new ImageDecodeError(
      source,
      `unsupported TIFF sample layout (photometric ${photometric}, bits per sample [${bits.join(', ')}], extra samples [${extras.join(', ')}], ` +
        `sample format [${formats.join(', ')}], fill order ${fillOrder}); supported: 1-16-bit grey, palette, 8/16-bit RGB(A), 8-bit CMYK`,
    );
  }
  const base = photometric === 2 ? 3 : photometric === 5 ? 4 : 1;
  const alphaAt = extras.findIndex((e) => e === 2 || e === 999);
  // Four RGB samples with no ExtraSamples tag: PIL takes the fourth as alpha.
  const alpha = alphaAt >= 0 ? base + alphaAt : photometric === 2 && samples === 4 && extras.length === 0 ? 3 : -1;
  return { photometric, bits: bits[0]!, samples, alpha };
}

/** Decodes IFD0 into RGBA (4 bytes per pixel). The caller has checked the size against its pixel limit. */
export function decodeTiff(bytes: Uint8Array, source: string): { data: Uint8Array; width: number; height: number } {
  const ifd = new Ifd0(bytes, source);
  const width = ifd.int(TAG.width, 'ImageWidth');
  const height = ifd.int(TAG.height, 'ImageLength');
  if (width === 0 || height === 0) throw new ImageDecodeError(source, `TIFF image has zero size (${width}x${height})`);
  const compression = ifd.int(TAG.compression, 'Compression', 1);
  if (COMPRESSION[compression] === undefined) {
    throw new ImageDecodeError(source, `unsupported TIFF compression ${compression} (supported: none, LZW, Deflate, PackBits)`);
  }
  if (ifd.has(TAG.tileWidth) || ifd.has(TAG.tileOffsets)) throw new ImageDecodeError(source, 'tiled TIFF images are not supported');
  const layout = readLayout(ifd, source);
  if (layout.samples > 1 && ifd.int(TAG.planarConfiguration, 'PlanarConfiguration', 1) !== 1) {
    throw new ImageDecodeError(source, 'TIFF with separate sample planes (PlanarConfiguration 2) is not supported');
  }
  const rowBytes = Math.ceil((width * layout.samples * layout.bits) / 8);
  const pixels = readStrips(ifd, compression, height, rowBytes, source);
  // libtiff undoes the predictor for the codecs that support one (LZW, Deflate); PIL's raw reader ignores the tag.
  const predictor = compression === 5 || compression === 8 || compression === 32946 ? ifd.int(TAG.predictor, 'Predictor', 1) : 1;
  if (predictor === 2) {
    if (layout.bits < 8) throw new ImageDecodeError(source, `TIFF horizontal differencing needs 8 or 16-bit samples, got ${layout.bits}`);
    undoHorizontalDifferencing(pixels, width, height, rowBytes, layout, ifd.littleEndian);
  } else if (predictor !== 1) {
    throw new ImageDecodeError(source, `unsupported TIFF predictor ${predictor} (supported: 1, 2)`);
  }
  const palette = layout.photometric === 3 ? readColorMap(ifd, layout.bits, source) : null;
  return { data: toRgba(pixels, width, height, rowBytes, layout, palette, ifd.littleEndian), width, height };
}

/** Every strip decoded into one buffer of `height` rows; each strip must fill its rows exactly. */
function readStrips(ifd: Ifd0, compression: number, height: number, rowBytes: number, source: string): Uint8Array {
  const rowsPerStrip = Math.min(ifd.int(TAG.rowsPerStrip, 'RowsPerStrip', height), height);
  if (rowsPerStrip < 1) throw new ImageDecodeError(source, 'TIFF RowsPerStrip is 0');
  const strips = Math.ceil(height / rowsPerStrip);
  const offsets = ifd.ints(TAG.stripOffsets, 'StripOffsets');
  if (offsets === undefined || offsets.length !== strips) {
    throw new ImageDecodeError(source, `TIFF has ${offsets?.length ?? 'no'} strip offsets, expected ${strips} (${height} rows, ${rowsPerStrip} per strip)`);
  }
  // PIL reads uncompressed strips by offset alone; libtiff reads compressed ones by their byte counts.
  const counts = compression === 1 ? undefined : ifd.ints(TAG.stripByteCounts, 'StripByteCounts');
  if (compression !== 1 && counts?.length !== strips) {
    throw new ImageDecodeError(source, `TIFF has ${counts?.length ?? 'no'} strip byte counts, expected ${strips}`);
  }
  const out = new Uint8Array(rowBytes * height);
  for (let s = 0; s < strips; s++) {
    const first = s * rowsPerStrip;
    const region = out.subarray(first * rowBytes, Math.min(height, first + rowsPerStrip) * rowBytes);
    const offset = offsets[s]!;
    const size = counts === undefined ? region.length : counts[s]!;
    if (offset + size > ifd.bytes.length) {
      throw new ImageDecodeError(source, `TIFF strip ${s} (${size} bytes at offset ${offset}) extends past the end of the file (${ifd.bytes.length} bytes)`);
    }
    const what = `TIFF strip ${s} of ${strips}`;
    const written = decodeStrip(ifd.bytes.subarray(offset, offset + size), region, compression, source, what);
    if (written < region.length) {
      throw new ImageDecodeError(source, `${what} holds ${written} of its ${region.length} bytes (${COMPRESSION[compression]} data ends early)`);
    }
  }
  return out;
}

/** Decodes one strip into `out`; returns how many bytes it filled. */
function decodeStrip(input: Uint8Array, out: Uint8Array, compression: number, source: string, what: string): number {
  switch (compression) {
    case 1:
      out.set(input);
      return input.length;
    case 5:
      return decodeLzw(input, out, TIFF_LZW, source, what);
    case 32773:
      return unpackBits(input, out);
    default:
      return inflateInto(input, out, source, what);
  }
}

/** PackBits as libtiff reads it: n >= 0 copies n + 1 bytes, -127..-1 repeats the next byte 1 - n times, -128 is a no-op. */
function unpackBits(input: Uint8Array, out: Uint8Array): number {
  let i = 0;
  let o = 0;
  while (i < input.length && o < out.length) {
    const n = (input[i++]! << 24) >> 24;
    if (n >= 0) {
      const k = Math.min(n + 1, input.length - i, out.length - o);
      out.set(input.subarray(i, i + k), o);
      i += n + 1;
      o += k;
    } else if (n !== -128 && i < input.length) {
      const k = Math.min(1 - n, out.length - o);
      out.fill(input[i++]!, o, o + k);
      o += k;
    }
  }
  return o;
}

/** Input is fed in small slices so that a stream inflating far past the strip costs little before it is cut off. */
const INFLATE_SLICE = 4096;

/** zlib-wrapped Deflate (libtiff's ZIP codec) into `out`, stopping once it is full; extra output is ignored as libtiff does. */
function inflateInto(input: Uint8Array, out: Uint8Array, source: string, what: string): number {
  let written = 0;
  const stream = new Unzlib((chunk) => {
    const n = Math.min(chunk.length, out.length - written);
    out.set(chunk.subarray(0, n), written);
    written += n;
  });
  try {
    for (let p = 0; p < input.length && written < out.length; p += INFLATE_SLICE) {
      stream.push(input.subarray(p, Math.min(input.length, p + INFLATE_SLICE)), false);
    }
    if (written < out.length) stream.push(new Uint8Array(0), true);
  } catch (err) {
    throw new ImageDecodeError(source, `${what}: corrupt Deflate data (${(err as Error).message})`, { cause: err });
  }
  return written;
}

/** Horizontal differencing (predictor 2): each sample is stored as the difference from the same sample one pixel left. */
function undoHorizontalDifferencing(pixels: Uint8Array, width: number, height: number, rowBytes: number, layout: Layout, littleEndian: boolean): void {
  const stride = layout.samples;
  if (layout.bits === 8) {
    for (let y = 0; y < height; y++) {
      const row = y * rowBytes;
      for (let i = stride; i < width * stride; i++) pixels[row + i] = (pixels[row + i]! + pixels[row + i - stride]!) & 0xff;
    }
    return;
  }
  const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    for (let i = stride; i < width * stride; i++) {
      const sum = (view.getUint16(row + 2 * i, littleEndian) + view.getUint16(row + 2 * (i - stride), littleEndian)) & 0xffff;
      view.setUint16(row + 2 * i, sum, littleEndian);
    }
  }
}

/** The colour map as PIL keeps it: 3 × 2^bits 16-bit values (all reds, then greens, then blues), high byte of each. */
function readColorMap(ifd: Ifd0, bits: number, source: string): Uint8Array {
  const map = ifd.ints(TAG.colorMap, 'ColorMap');
  const entries = 1 << bits;
  if (map === undefined || map.length !== 3 * entries) {
    throw new ImageDecodeError(source, `TIFF palette image has ${map === undefined ? 'no' : map.length} ColorMap values, expected ${3 * entries}`);
  }
  const rgb = new Uint8Array(3 * entries);
  for (let i = 0; i < entries; i++) {
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = map[c * entries + i]! >> 8;
  }
  return rgb;
}

/** (a * b) / 255 rounded as Pillow's MULDIV255 does. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** Samples to RGBA following PIL's unpackers and its conversion to RGB. */
function toRgba(
  pixels: Uint8Array,
  width: number,
  height: number,
  rowBytes: number,
  layout: Layout,
  palette: Uint8Array | null,
  littleEndian: boolean,
): Uint8Array {
  const { photometric, bits, samples, alpha } = layout;
  const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  // Sample s of pixel x in the row starting at byte `row`, at its stored width.
  const sample =
    bits === 16
      ? (row: number, x: number, s: number) => view.getUint16(row + 2 * (x * samples + s), littleEndian)
      : bits === 8
        ? (row: number, x: number, s: number) => pixels[row + x * samples + s]!
        : (row: number, x: number) => (pixels[row + ((x * bits) >> 3)]! >> (8 - bits - ((x * bits) & 7))) & ((1 << bits) - 1);
  // 16-bit grey clips at 255 (PIL's I;16 to RGB); other 16-bit samples keep their high byte (PIL's RGB;16 unpackers).
  const eight = bits === 16 ? (v: number) => v >> 8 : (v: number) => v;
  const greyScale = bits < 8 ? 255 / ((1 << bits) - 1) : 1;
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = 4 * (y * width + x);
      if (photometric === 3) {
        const index = sample(row, x, 0);
        out[o] = palette![3 * index]!;
        out[o + 1] = palette![3 * index + 1]!;
        out[o + 2] = palette![3 * index + 2]!;
      } else if (photometric === 2) {
        out[o] = eight(sample(row, x, 0));
        out[o + 1] = eight(sample(row, x, 1));
        out[o + 2] = eight(sample(row, x, 2));
      } else if (photometric === 5) {
        const k = 255 - sample(row, x, 3);
        for (let c = 0; c < 3; c++) out[o + c] = Math.max(0, k - mulDiv255(sample(row, x, c), k));
      } else {
        const v = sample(row, x, 0);
        const level = bits === 16 ? Math.min(v, 255) : photometric === 0 ? 255 - v * greyScale : v * greyScale;
        out[o] = level;
        out[o + 1] = level;
        out[o + 2] = level;
      }
      out[o + 3] = alpha >= 0 ? eight(sample(row, x, alpha)) : 255;
    }
  }
  return out;
}
