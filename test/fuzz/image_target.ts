/**
 * The image decoding path (`decodeImage`: header sniffing, the size check, then the decoders) on mutated PNG, JPEG,
 * BMP, GIF and TIFF files from `test/fixtures/images/`, and on valid files whose headers claim hostile values:
 * huge or zero sizes, absurd bit depths and palette sizes, TIFF entries with billions of values, IFD chains that
 * loop or add a second, larger image.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeImage } from '../../src/io/image_io.js';
import type { FuzzTarget } from './harness.js';
import { expectBothOutcomes, mutatedBytes } from './harness.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'images');
const read = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(DIR, name)));

/** Small enough that a decoder honouring the limit stays well under the allocation guard. */
export const FUZZ_MAX_PIXELS = 2 ** 20;

const SEEDS = {
  png: [read('exif_6.png'), read('palette.png'), read('grey16.png'), read('grey_alpha.png'), read('rgb16.png')],
  jpeg: [read('exif_6.jpg'), read('chelsea_q85_420.jpg')],
  bmp: [read('plain.bmp')],
  gif: [read('palette.gif')],
  tiff: [read('exif_6.tif'), read('plain_lzw.tif')],
};

/** Decodes and checks what came back is a consistent image within the limit. */
async function decodeChecked(bytes: Uint8Array): Promise<void> {
  const image = await decodeImage(bytes, 'fuzz-image', { maxPixels: FUZZ_MAX_PIXELS });
  const { width, height, channels, data } = image;
  if (!(width >= 1 && height >= 1 && width * height <= FUZZ_MAX_PIXELS)) throw new Error(`decoded a ${width}x${height} image`);
  if (![1, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new Error(`inconsistent image: ${width}x${height}x${channels} with ${data.length} bytes`);
  }
}

export const imageBytesTarget: FuzzTarget<Uint8Array> = {
  name: 'image decoding (mutated files)',
  arbitrary: mutatedBytes(Object.values(SEEDS).flat()),
  run: decodeChecked,
  verify: expectBothOutcomes('image decoding (mutated files)'),
};

/** Values a header field may claim: plausible, boundary and absurd. */
const claim = fc.oneof(fc.nat(64), fc.constantFrom(0, 1, 255, 256, 2048, 4096, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1));

function copy(bytes: Uint8Array): { bytes: Uint8Array; view: DataView } {
  const out = new Uint8Array(bytes);
  return { bytes: out, view: new DataView(out.buffer) };
}

/** PNG: IHDR width, height, bit depth, colour type or interlace, with the chunk CRC recomputed so decoders believe it. */
const pngClaims = fc
  .tuple(fc.constantFrom(...SEEDS.png), fc.constantFrom('width', 'height', 'depth', 'colour', 'interlace', 'both'), claim, claim)
  .map(([seed, field, a, b]) => {
    const { bytes, view } = copy(seed);
    if (field === 'width' || field === 'both') view.setUint32(16, a >>> 0);
    if (field === 'height' || field === 'both') view.setUint32(20, (field === 'both' ? b : a) >>> 0);
    if (field === 'depth') bytes[24] = a & 0xff;
    if (field === 'colour') bytes[25] = a & 0xff;
    if (field === 'interlace') bytes[28] = a & 0xff;
    view.setUint32(29, crc32(bytes.subarray(12, 29)) >>> 0);
    return bytes;
  });

/** JPEG: the first SOF's height, width, component count or a component's sampling factors. */
const jpegClaims = fc
  .tuple(fc.constantFrom(...SEEDS.jpeg), fc.constantFrom('height', 'width', 'components', 'sampling', 'precision'), claim)
  .map(([seed, field, value]) => {
    const { bytes, view } = copy(seed);
    let sof = -1;
    for (let p = 2; p + 4 < bytes.length; ) {
      const marker = bytes[p + 1]!;
      if (marker >= 0xc0 && marker <= 0xc2) {
        sof = p + 4;
        break;
      }
      p += 2 + view.getUint16(p + 2);
    }
    if (sof < 0) throw new Error('seed JPEG has no SOF');
    if (field === 'precision') bytes[sof] = value & 0xff;
    if (field === 'height') view.setUint16(sof + 1, value & 0xffff);
    if (field === 'width') view.setUint16(sof + 3, value & 0xffff);
    if (field === 'components') bytes[sof + 5] = value & 0xff;
    if (field === 'sampling') bytes[sof + 7] = value & 0xff;
    return bytes;
  });

/** BMP: header size, width, height (negative too), planes, bit count, compression, image size, palette size. */
const bmpClaims = fc
  .tuple(fc.constantFrom(...SEEDS.bmp), fc.constantFrom(14, 18, 22, 26, 28, 30, 34, 46, 10), claim, fc.boolean())
  .map(([seed, offset, value, negative]) => {
    const { bytes, view } = copy(seed);
    if (offset === 26 || offset === 28) view.setUint16(offset, value & 0xffff, true);
    else view.setInt32(offset, negative ? -(value | 0) : value | 0, true);
    return bytes;
  });

/** GIF: logical screen size, or the first image descriptor's position and size. */
const gifClaims = fc
  .tuple(fc.constantFrom(...SEEDS.gif), fc.constantFrom(6, 8, 'left', 'top', 'width', 'height', 'flags'), claim)
  .map(([seed, field, value]) => {
    const { bytes, view } = copy(seed);
    if (typeof field === 'number') {
      view.setUint16(field, value & 0xffff, true);
      return bytes;
    }
    // The image descriptor follows the header (13 bytes) and the global colour table, when there is one.
    const table = bytes[10]! & 0x80 ? 3 * 2 ** ((bytes[10]! & 7) + 1) : 0;
    let p = 13 + table;
    while (bytes[p] === 0x21 && p < bytes.length) {
      p += 2;
      while (bytes[p]! > 0) p += bytes[p]! + 1;
      p++;
    }
    const at = { left: 1, top: 3, width: 5, height: 7, flags: 9 }[field] as number;
    if (field === 'flags') bytes[p + at] = value & 0xff;
    else view.setUint16(p + at, value & 0xffff, true);
    return bytes;
  });

interface Ifd {
  offset: number;
  count: number;
  little: boolean;
}

function ifd0(bytes: Uint8Array): Ifd {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const offset = view.getUint32(4, little);
  return { offset, count: view.getUint16(offset, little), little };
}

/**
 * TIFF: one IFD0 entry gets another type, a count of up to 2^32 - 1 or another value; or the IFD chain loops back
 * to IFD0; or a second IFD claiming a huge image follows IFD0.
 */
const tiffClaims = fc
  .tuple(
    fc.constantFrom(...SEEDS.tiff),
    fc.constantFrom('type', 'count', 'value', 'loop', 'second'),
    fc.nat(),
    fc.constantFrom(1, 2, 3, 4, 5, 7, 9, 11, 12, 13, 16, 17),
    claim,
  )
  .map(([seed, mode, pick, type, value]) => {
    const { offset, count, little } = ifd0(seed);
    const next = offset + 2 + count * 12;
    if (mode === 'second') {
      // IFD1: width, height, bits per sample and strip data claiming `value`, placed at the end of the file.
      const entries: [number, number, number][] = [
        [256, 4, value],
        [257, 4, value],
        [258, 3, 8],
        [259, 3, 1],
        [262, 3, 2],
        [273, 4, 8],
        [277, 3, 3],
        [279, 4, value],
      ];
      const extra = new Uint8Array(2 + entries.length * 12 + 4);
      const out = new Uint8Array(seed.length + extra.length);
      out.set(seed);
      const view = new DataView(out.buffer);
      const at = seed.length;
      view.setUint16(at, entries.length, little);
      entries.forEach(([tag, t, v], i) => {
        view.setUint16(at + 2 + i * 12, tag, little);
        view.setUint16(at + 4 + i * 12, t, little);
        view.setUint32(at + 6 + i * 12, 1, little);
        if (t === 3) view.setUint16(at + 10 + i * 12, v & 0xffff, little);
        else view.setUint32(at + 10 + i * 12, v >>> 0, little);
      });
      view.setUint32(next, at, little);
      return out;
    }
    const { bytes, view } = copy(seed);
    if (mode === 'loop') {
      view.setUint32(next, offset, little);
      return bytes;
    }
    const entry = offset + 2 + (pick % count) * 12;
    if (mode === 'type') view.setUint16(entry + 2, type, little);
    if (mode === 'count') view.setUint32(entry + 4, value >>> 0, little);
    if (mode === 'value') view.setUint32(entry + 8, value >>> 0, little);
    return bytes;
  });

export const imageHeaderTarget: FuzzTarget<Uint8Array> = {
  name: 'image decoding (hostile header claims)',
  arbitrary: fc.oneof(pngClaims, jpegClaims, bmpClaims, gifClaims, tiffClaims),
  run: decodeChecked,
  verify: expectBothOutcomes('image decoding (hostile header claims)'),
};
