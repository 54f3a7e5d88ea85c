/**
 * The GIF and TIFF decoders: every sample layout and variant against PIL, and the hostile inputs the fuzzers found
 * (looping and oversized TIFF IFD chains, huge entry counts, a corrupted GIF LZW stream), rebuilt from the fixtures.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { ImageDecodeError } from '../src/errors.js';
import { decodeImage, loadImage } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { type RawImage, toRGB } from '../src/processor/image.js';
import { runNode } from './helpers/child_node.js';

const DIR = path.join(import.meta.dirname, 'fixtures', 'images');
const read = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(DIR, name)));
const variants = await readSafetensors(path.join(DIR, 'decode_variants.safetensors'));
const cases = JSON.parse(readFileSync(path.join(DIR, 'decode_variants.json'), 'utf8')) as { file: string }[];
const scratch = mkdtempSync(path.join(tmpdir(), 'clipseg-gif-tiff-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

for (const { file } of cases) {
  test(`loadImage(${file}) matches PIL load_image(...).convert("RGB") exactly`, async () => {
    const img = toRGB(await loadImage(path.join(DIR, file)));
    const [h, w] = variants.info(file).shape as [number, number, number];
    assert.deepEqual([img.height, img.width], [h, w]);
    assert.deepEqual(img.data, new Uint8Array(variants.getBytes(file)));
  });
}

const isDecodeError = (pattern: RegExp) => (e: unknown) => e instanceof ImageDecodeError && pattern.test(e.message);

/** Runs `fn`, failing when it takes longer than `ms` (the defects made decoding take seconds or never end). */
async function quickly<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    const took = performance.now() - start;
    assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// TIFF

interface TiffEntry {
  tag: number;
  /** Offset of the 12-byte entry. */
  at: number;
}

/** IFD0 of a little-endian TIFF: where it is, its entries and where its next-IFD pointer sits. */
function ifd0(bytes: Uint8Array): { offset: number; entries: TiffEntry[]; next: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(bytes[0], 0x49, 'little-endian fixture');
  const offset = view.getUint32(4, true);
  const count = view.getUint16(offset, true);
  const entries = Array.from({ length: count }, (_, i) => ({ tag: view.getUint16(offset + 2 + i * 12, true), at: offset + 2 + i * 12 }));
  return { offset, entries, next: offset + 2 + count * 12 };
}

function edited(bytes: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(bytes);
  edit(new DataView(out.buffer));
  return out;
}

function entry(bytes: Uint8Array, tag: number): TiffEntry {
  const found = ifd0(bytes).entries.find((e) => e.tag === tag);
  assert.ok(found, `tag ${tag} in the fixture`);
  return found;
}

/** The file with an IFD appended after it that claims a `size` x `size` RGB image, linked from IFD0. */
function withSecondIfd(bytes: Uint8Array, size: number): Uint8Array {
  const fields: [number, number, number][] = [[256, 4, size], [257, 4, size], [258, 3, 8], [259, 3, 1], [262, 3, 2], [273, 4, 8], [277, 3, 3], [279, 4, size * size * 3]];
  const out = new Uint8Array(bytes.length + 2 + fields.length * 12 + 4);
  out.set(bytes);
  const view = new DataView(out.buffer);
  view.setUint16(bytes.length, fields.length, true);
  fields.forEach(([tag, type, value], i) => {
    const at = bytes.length + 2 + i * 12;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setUint32(at + 4, 1, true);
    view.setUint32(at + 8, value, true);
  });
  view.setUint32(ifd0(bytes).next, bytes.length, true);
  return out;
}

const TIFF = read('exif_6.tif');
const expectedTiff = await loadImage(TIFF);

test('TIFF: a next-IFD pointer looping back to IFD0 decodes IFD0 (the chain is not followed)', async () => {
  const { offset, next } = ifd0(TIFF);
  const looping = edited(TIFF, (v) => v.setUint32(next, offset, true));
  assert.deepEqual(await quickly(2000, () => decodeImage(looping, 'loop.tif')), expectedTiff);
});

test('TIFF: a second IFD claiming 60000 x 60000 is never read (PIL decodes the first frame)', async () => {
  const big = withSecondIfd(TIFF, 60000);
  assert.deepEqual(await quickly(2000, () => decodeImage(big, 'second.tif')), expectedTiff);
});

test('TIFF: SubIFD and EXIF IFD pointers back to IFD0 are ignored', async () => {
  const { offset } = ifd0(TIFF);
  // PlanarConfiguration (1 = the default for RGB here) becomes a SubIFDs entry, then an EXIF IFD pointer.
  for (const tag of [330, 34665]) {
    const hostile = edited(TIFF, (v) => {
      const at = entry(TIFF, 284).at;
      v.setUint16(at, tag, true);
      v.setUint16(at + 2, 4, true);
      v.setUint32(at + 8, offset, true);
    });
    assert.deepEqual(await quickly(2000, () => decodeImage(hostile, `sub_${tag}.tif`)), expectedTiff, `tag ${tag}`);
  }
});

test('TIFF: an entry count of 2^32 - 1 on any IFD0 entry gives the image or an ImageDecodeError at once', async () => {
  const unrotated = await loadImage(edited(TIFF, (v) => v.setUint16(entry(TIFF, 274).at + 8, 1, true)));
  for (const { tag, at } of ifd0(TIFF).entries) {
    const hostile = edited(TIFF, (v) => v.setUint32(at + 4, 2 ** 32 - 1, true));
    const outcome = await quickly(1000, () => decodeImage(hostile, `count_${tag}.tif`).catch((e: unknown) => e));
    if (outcome instanceof ImageDecodeError) {
      assert.match(outcome.message, /^count_\d+\.tif: TIFF is truncated in its \w+ values \(4294967295\)/);
    } else {
      // PIL drops an orientation it cannot read (its data would lie past the end of the file): no rotation.
      assert.deepEqual(outcome, tag === 274 ? unrotated : expectedTiff, `tag ${tag}`);
    }
  }
});

test('TIFF: an IFD0 size over the pixel limit is refused from the header', async () => {
  const huge = edited(TIFF, (v) => {
    v.setUint32(entry(TIFF, 256).at + 8, 60000, true);
    v.setUint32(entry(TIFF, 257).at + 8, 60000, true);
  });
  await assert.rejects(decodeImage(huge, 'huge.tif'), isDecodeError(/60000x60000 = 3600000000 pixels, over the limit/));
});

test('TIFF: strips outside the file, corrupt or short LZW data and missing strips are ImageDecodeErrors', async () => {
  const lzw = read('plain_lzw.tif');
  const offsetAt = entry(lzw, 273).at + 8;
  const countAt = entry(lzw, 279).at + 8;
  const view = new DataView(lzw.buffer, lzw.byteOffset);
  const stripStart = view.getUint32(offsetAt, true);
  const stripBytes = view.getUint32(countAt, true);
  const bad: [string, Uint8Array, RegExp][] = [
    ['offset.tif', edited(lzw, (v) => v.setUint32(offsetAt, lzw.length - 10, true)), /strip 0 \(3354 bytes at offset 3484\) extends past the end of the file/],
    ['count.tif', edited(lzw, (v) => v.setUint32(countAt, 2 ** 32 - 1, true)), /extends past the end of the file/],
    // The opening clear code (256 in 9 bits) followed by a code of 508 or more: far above the next free code.
    ['code.tif', edited(lzw, (v) => v.setUint16(stripStart, 0x807f, false)), /strip 0 of 1: corrupt LZW data \(code 5\d\d with no previous code/],
    ['no_clear.tif', edited(lzw, (v) => v.setUint8(stripStart, 0)), /does not start with a clear code/],
    ['short.tif', edited(lzw, (v) => v.setUint32(countAt, Math.floor(stripBytes / 2), true)), /strip 0 of 1 holds \d+ of its 2880 bytes \(LZW data ends early\)/],
    ['strips.tif', edited(lzw, (v) => v.setUint16(entry(lzw, 278).at + 8, 5, true)), /has 1 strip offsets, expected 5 \(24 rows, 5 per strip\)/],
  ];
  for (const [name, bytes, pattern] of bad) {
    await assert.rejects(quickly(1000, () => decodeImage(bytes, name)), isDecodeError(pattern), name);
  }
});

test('TIFF: layouts and codings PIL would decode differently are refused by name, not guessed', async () => {
  const withShort = (tag: number, value: number) => edited(TIFF, (v) => v.setUint16(entry(TIFF, tag).at + 8, value, true));
  const refused: [string, Uint8Array, RegExp][] = [
    ['jpeg.tif', withShort(259, 7), /unsupported TIFF compression 7 \(supported: none, LZW, Deflate, PackBits\)/],
    ['planar.tif', withShort(284, 2), /separate sample planes \(PlanarConfiguration 2\)/],
    ['ycbcr.tif', withShort(262, 6), /unsupported TIFF sample layout \(photometric 6, bits per sample \[8, 8, 8\]/],
    // TileWidth in place of RowsPerStrip.
    ['tiled.tif', edited(TIFF, (v) => v.setUint16(entry(TIFF, 278).at, 322, true)), /tiled TIFF images are not supported/],
  ];
  for (const [name, bytes, pattern] of refused) await assert.rejects(decodeImage(bytes, name), isDecodeError(pattern), name);
});

// ---------------------------------------------------------------------------------------------------------------
// GIF

const PALETTE = [
  [200, 10, 10],
  [10, 200, 10],
  [10, 10, 200],
  [250, 250, 0],
];

interface GifSpec {
  screen: [number, number];
  frame: [number, number, number, number];
  /** LZW codes with their width in bits, packed from the least significant bit. */
  codes: [number, number][];
  global?: number[][] | null;
  local?: number[][];
  transparent?: number;
  minCodeSize?: number;
}

function table(colours: number[][]): number[] {
  const bits = Math.max(1, Math.ceil(Math.log2(colours.length)));
  return [...colours.flat(), ...new Array<number>(3 * (2 ** bits - colours.length)).fill(0)];
}

function tableFlags(colours: number[][]): number {
  return 0x80 | (Math.max(1, Math.ceil(Math.log2(colours.length))) - 1);
}

function packCodes(codes: [number, number][]): number[] {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const [code, width] of codes) {
    acc |= code << bits;
    bits += width;
    while (bits >= 8) {
      out.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) out.push(acc & 0xff);
  return out;
}

function gif(spec: GifSpec): Uint8Array {
  const global = spec.global === undefined ? PALETTE : spec.global;
  const u16 = (v: number) => [v & 0xff, v >> 8];
  const bytes = [...Buffer.from('GIF89a'), ...u16(spec.screen[0]), ...u16(spec.screen[1]), global ? tableFlags(global) : 0, 0, 0];
  if (global) bytes.push(...table(global));
  if (spec.transparent !== undefined) bytes.push(0x21, 0xf9, 4, 1, 0, 0, spec.transparent, 0);
  const [left, top, width, height] = spec.frame;
  bytes.push(0x2c, ...u16(left), ...u16(top), ...u16(width), ...u16(height), spec.local ? tableFlags(spec.local) : 0);
  if (spec.local) bytes.push(...table(spec.local));
  bytes.push(spec.minCodeSize ?? 2);
  const data = packCodes(spec.codes);
  for (let i = 0; i < data.length; i += 255) bytes.push(Math.min(255, data.length - i), ...data.slice(i, i + 255));
  bytes.push(0, 0x3b);
  return Uint8Array.from(bytes);
}

/** Minimum code size 2: clear 4, end 5, first free code 6, codes of 3 bits until entry 7 is added. */
const CLEAR: [number, number] = [4, 3];
const END: [number, number] = [5, 3];
const lit = (...indices: number[]): [number, number][] => indices.map((i) => [i, 3]);

function rgba(...pixels: [number, number?][]): Uint8Array {
  return Uint8Array.from(pixels.flatMap(([i, a = 255]) => [...(PALETTE[i] ?? [0, 0, 0]), a]));
}

const decodeGif = async (spec: GifSpec, name = 'test.gif'): Promise<RawImage> => decodeImage(gif(spec), name);

test('GIF: the fuzz reproducer (palette.gif, 12 bytes inserted into its LZW data) is an ImageDecodeError, at once', async () => {
  const original = read('palette.gif');
  const inserted = Buffer.from('87021e0504fb58ba05fbc587', 'hex');
  const corrupt = Buffer.concat([original.subarray(0, 349), inserted, original.subarray(349)]);
  await assert.rejects(quickly(1000, () => decodeImage(corrupt, 'seed99.gif')), isDecodeError(/^seed99\.gif: GIF image data: corrupt LZW data \(code \d+ with next free code \d+/));
});

/** A 3 x 1 GIF with the given LZW codes. */
const row3 = (codes: [number, number][], minCodeSize?: number): Promise<RawImage> =>
  decodeGif({ screen: [3, 1], frame: [0, 0, 3, 1], codes, minCodeSize });

test('GIF LZW: a code above the next free code is corrupt; the code being defined (KwKwK) is not', async () => {
  // After clear, 1: the next free code is 6. Code 6 then means "1" + its own first byte: pixels 1, 1, 1.
  const kwkwk = await row3([CLEAR, ...lit(1), [6, 3], END]);
  assert.deepEqual(kwkwk.data, toRGB({ data: rgba([1], [1], [1]), width: 3, height: 1, channels: 4 }).data);
  await assert.rejects(row3([CLEAR, ...lit(1), [7, 3], END]), isDecodeError(/code 7 with next free code 6/));
  await assert.rejects(row3([CLEAR, [6, 3], END]), isDecodeError(/code 6 with no previous code/));
});

test('GIF LZW: the frame must be complete; the end code may be missing and data past the frame is ignored (as PIL)', async () => {
  const expected = toRGB({ data: rgba([1], [2], [3]), width: 3, height: 1, channels: 4 }).data;
  await assert.rejects(row3([CLEAR, ...lit(1, 2), END]), isDecodeError(/GIF image data ends after 2 of 3 pixels/));
  // 16 bits of data, so no padding bits that would read as more codes: 4 of 6 pixels.
  const short = decodeGif({ screen: [3, 2], frame: [0, 0, 3, 2], codes: [CLEAR, ...lit(1, 2, 3), [1, 4]] });
  await assert.rejects(short, isDecodeError(/ends after 4 of 6 pixels/));
  assert.deepEqual((await row3([CLEAR, ...lit(1, 2, 3)])).data, expected);
  assert.deepEqual((await row3([CLEAR, ...lit(1, 2, 3), [0, 4], [9, 4], [15, 4]])).data, expected);
  assert.deepEqual((await row3([...lit(1, 2, 3), END])).data, expected, 'no opening clear code');
  for (const minCodeSize of [0, 1, 9, 12]) {
    await assert.rejects(row3([CLEAR, ...lit(1, 2, 3)], minCodeSize), isDecodeError(new RegExp(`minimum code size must be 2-8, got ${minCodeSize}`)));
  }
});

test('GIF: a frame past the logical screen grows the canvas; the rest is colour 0, or the transparent index', async () => {
  // Screen 2 x 1, frame 2 x 2 at (1, 0): canvas 3 x 2.
  const spec = { screen: [2, 1] as [number, number], frame: [1, 0, 2, 2] as [number, number, number, number], codes: [CLEAR, ...lit(1, 2, 3), [3, 4], [5, 4]] as [number, number][] };
  const plain = await decodeGif(spec);
  assert.deepEqual([plain.width, plain.height, plain.channels], [3, 2, 3]);
  assert.deepEqual(plain.data, toRGB({ data: rgba([0], [1], [2], [0], [3], [3]), width: 3, height: 2, channels: 4 }).data);
  const transparent = await decodeGif({ ...spec, transparent: 2 });
  assert.deepEqual(transparent.data, rgba([2, 0], [1], [2, 0], [2, 0], [3], [3]), 'transparent pixels keep their palette colour under alpha 0');
  // A descriptor at (65535, 65535) would need a canvas of 4.3 billion pixels: refused from the header.
  await assert.rejects(decodeGif({ ...spec, frame: [65535, 65535, 2, 2] }), isDecodeError(/65537x65537 = \d+ pixels, over the limit/));
});

test('GIF: colour tables as PIL reads them (local over global, identity grey tables, indices past the table)', async () => {
  // The fourth code is read with 4 bits: adding entry 7 widened the codes.
  const spec = { screen: [4, 1] as [number, number], frame: [0, 0, 4, 1] as [number, number, number, number], codes: [CLEAR, ...lit(0, 1, 2), [3, 4]] as [number, number][] };
  const local = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]];
  assert.deepEqual([...(await decodeGif({ ...spec, local })).data], local.flat());
  // An identity grey table counts as none: a local one falls back to the global table; with none, indices are grey.
  const identity = [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]];
  assert.deepEqual((await decodeGif({ ...spec, local: identity })).data, toRGB({ data: rgba([0], [1], [2], [3]), width: 4, height: 1, channels: 4 }).data);
  assert.deepEqual([...(await decodeGif({ ...spec, global: null })).data], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  // Indices 2 and 3 lie past a two-colour table: black.
  assert.deepEqual([...(await decodeGif({ ...spec, global: PALETTE.slice(0, 2) })).data], [...PALETTE[0]!, ...PALETTE[1]!, 0, 0, 0, 0, 0, 0]);
});

test('GIF: a table-full stream (4096 codes, no clear) decodes with 12-bit codes and no more entries', async () => {
  // Literal codes only: every code after the first adds an entry, the width grows at 8, 16, ... 4096 entries.
  const n = 5000;
  const indices = Array.from({ length: n }, (_, i) => (i * 7 + (i >> 5)) % 4);
  const codes: [number, number][] = [CLEAR];
  let width = 3;
  let next = 6;
  indices.forEach((index, i) => {
    codes.push([index, width]);
    if (i > 0 && next < 4096) {
      next++;
      if (next === 1 << width && width < 12) width++;
    }
  });
  const img = await decodeGif({ screen: [100, 50], frame: [0, 0, 100, 50], codes });
  assert.deepEqual(img.data, toRGB({ data: rgba(...indices.map((i): [number] => [i])), width: 100, height: 50, channels: 4 }).data);
});

test('nothing is written to stdout while decoding corrupt GIF and TIFF files', async () => {
  const original = read('palette.gif');
  const files = {
    'lzw.gif': Buffer.concat([original.subarray(0, 349), Buffer.from('87021e0504fb58ba05fbc587', 'hex'), original.subarray(349)]),
    'short.gif': original.subarray(0, original.length - 200),
    'extra.gif': gif({ screen: [3, 1], frame: [0, 0, 3, 1], codes: [CLEAR, ...lit(1, 2, 3, 0, 1, 2), END] }),
    'loop.tif': edited(TIFF, (v) => v.setUint32(ifd0(TIFF).next, ifd0(TIFF).offset, true)),
    'tiled.tif': edited(TIFF, (v) => v.setUint16(entry(TIFF, 278).at, 322, true)),
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(scratch, name), bytes);
  const script = `
    import { loadImage } from './src/io/image_io.ts';
    for (const name of ${JSON.stringify(Object.keys(files))}) {
      const outcome = await loadImage(${JSON.stringify(scratch)} + '/' + name).then(() => 'ok', (e) => e.constructor.name);
      process.stderr.write(name + ' ' + outcome + '\\n');
    }`;
  const exit = await runNode(['--input-type=module', '-e', script]);
  assert.equal(exit.code, 0, exit.stderr);
  assert.equal(exit.stdout, '');
  assert.deepEqual(exit.stderr.trim().split('\n').sort(), [
    'extra.gif ok',
    'loop.tif ok',
    'lzw.gif ImageDecodeError',
    'short.gif ImageDecodeError',
    'tiled.tif ImageDecodeError',
  ]);
});
