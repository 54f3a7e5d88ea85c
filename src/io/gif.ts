/**
 * GIF decoding: the first frame, as PIL's `Image.open(...).convert('RGB')` sees it.
 *
 * A decoder of its own rather than omggif (through jimp): omggif decodes every frame, accepts LZW codes above the
 * next free code (a corrupted stream then loops forever) and prints warnings to stdout. GIF is small enough to
 * decode strictly here: every read is bounds-checked, the LZW stream is validated as it is decoded (see lzw.ts),
 * and the work is linear in the file and frame size.
 *
 * PIL's rules for the first frame, which this follows:
 * - the canvas is the logical screen grown to hold the frame (a frame may extend past the screen);
 * - canvas pixels outside the frame take the transparent index when the frame has one, else index 0;
 * - a colour table whose entries are all (i, i, i) counts as none; the local table, unless it is such a one, replaces
 *   the global one; with neither the index is the grey level (PIL mode "L"); indices past the table are black;
 * - extensions are skipped by PIL's reading of them, stray bytes between blocks are skipped;
 * - the frame must be completely decoded ("image file is truncated" otherwise); data after it is ignored.
 * Transparent pixels come back with alpha 0 over their palette colour, so dropping alpha gives PIL's RGB.
 */
import { ImageDecodeError } from '../errors.js';
import { GIF_LZW, decodeLzw } from './lzw.js';

export interface GifLayout {
  /** Canvas size: the logical screen grown to include the first frame. */
  readonly width: number;
  readonly height: number;
  readonly frame: { readonly left: number; readonly top: number; readonly width: number; readonly height: number };
  readonly interlaced: boolean;
  /** RGB triples; null when the frame is greyscale (no table, or an identity grey table). */
  readonly palette: Uint8Array | null;
  readonly transparent: number | undefined;
  readonly minCodeSize: number;
  /** Offset of the first image data sub-block. */
  readonly dataStart: number;
}

export interface DecodedGif {
  /** RGBA, 4 bytes per canvas pixel. */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

const GCE = 0xf9;
const COMMENT = 0xfe;
const APPLICATION = 0xff;

class Cursor {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly source: string) {}

  need(size: number, what: string): void {
    if (this.pos + size > this.bytes.length) {
      throw new ImageDecodeError(this.source, `GIF is truncated in its ${what} (needed ${size} bytes at offset ${this.pos}, file has ${this.bytes.length})`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.bytes[this.pos]! | (this.bytes[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }

  take(size: number, what: string): Uint8Array {
    this.need(size, what);
    const out = this.bytes.subarray(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }

  /** One data sub-block as PIL's `data()` reads it: null for the zero-length terminator or at the end of the file. */
  subBlock(): Uint8Array | null {
    if (this.pos >= this.bytes.length) return null;
    const size = this.bytes[this.pos++]!;
    if (size === 0) return null;
    const out = this.bytes.subarray(this.pos, Math.min(this.pos + size, this.bytes.length));
    this.pos += out.length;
    return out;
  }

  /** Skips sub-blocks up to and including the next terminator. */
  skipSubBlocks(): void {
    let block = this.subBlock();
    while (block !== null) block = this.subBlock();
  }
}

/** A colour table as PIL keeps it: null when every entry is (i, i, i) for its own index i. */
function colourTable(table: Uint8Array): Uint8Array | null {
  for (let i = 0; i < table.length / 3; i++) {
    if (table[3 * i] !== i || table[3 * i + 1] !== i || table[3 * i + 2] !== i) return table;
  }
  return null;
}

/** Reads everything up to the first frame's image data. */
export function readGifLayout(bytes: Uint8Array, source: string): GifLayout {
  const r = new Cursor(bytes, source);
  r.take(6, 'signature');
  const screenWidth = r.u16('logical screen descriptor');
  const screenHeight = r.u16('logical screen descriptor');
  const screenFlags = r.u8('logical screen descriptor');
  r.take(2, 'logical screen descriptor');
  const globalTable = screenFlags & 0x80 ? colourTable(r.take(3 << ((screenFlags & 7) + 1), 'global colour table')) : null;
  let transparent: number | undefined;

  for (;;) {
    if (r.pos >= bytes.length) throw new ImageDecodeError(source, 'GIF ends before its first image');
    const introducer = r.u8('block introducer');
    if (introducer === 0x3b) throw new ImageDecodeError(source, 'GIF has no image (trailer before the first image descriptor)');
    if (introducer === 0x21) {
      const label = r.u8('extension');
      const block = r.subBlock();
      if (label === GCE && block !== null) {
        // PIL reads the delay (bytes 1-2) always and the index (byte 3) when the transparency flag is set.
        const needed = block[0]! & 1 ? 4 : 3;
        if (block.length < needed) throw new ImageDecodeError(source, `GIF graphic control extension is ${block.length} bytes, expected ${needed}`);
        if (block[0]! & 1) transparent = block[3]!;
      }
      if (label === COMMENT) {
        // PIL reads a comment's blocks up to its terminator, and nothing past it.
        if (block !== null) r.skipSubBlocks();
        continue;
      }
      if (label === APPLICATION && block !== null && ascii(block, 11) === 'NETSCAPE2.0') r.subBlock();
      // Other extensions: PIL skips sub-blocks up to the next empty one, even when the first was already empty.
      r.skipSubBlocks();
      continue;
    }
    // PIL skips any other byte between blocks.
    if (introducer !== 0x2c) continue;

    const left = r.u16('image descriptor');
    const top = r.u16('image descriptor');
    const width = r.u16('image descriptor');
    const height = r.u16('image descriptor');
    const flags = r.u8('image descriptor');
    const localTable = flags & 0x80 ? colourTable(r.take(3 << ((flags & 7) + 1), 'local colour table')) : null;
    const minCodeSize = r.u8('LZW minimum code size');
    // The GIF specification allows 2-8 (PIL also accepts 1 and 9-11).
    if (minCodeSize < 2 || minCodeSize > 8) throw new ImageDecodeError(source, `GIF LZW minimum code size must be 2-8, got ${minCodeSize}`);
    if (width === 0 || height === 0) throw new ImageDecodeError(source, `GIF frame has zero size (${width}x${height})`);
    return {
      width: Math.max(screenWidth, left + width),
      height: Math.max(screenHeight, top + height),
      frame: { left, top, width, height },
      interlaced: (flags & 0x40) !== 0,
      // PIL keeps the global table on the image when the local one is an identity grey table, and converts by it.
      palette: localTable ?? globalTable,
      transparent,
      minCodeSize,
      dataStart: r.pos,
    };
  }
}

function ascii(bytes: Uint8Array, length: number): string {
  return String.fromCharCode(...bytes.subarray(0, length));
}

/** The image data sub-blocks joined; a file that ends inside them gives what is there. */
function imageData(bytes: Uint8Array, start: number, source: string): Uint8Array {
  const r = new Cursor(bytes, source);
  r.pos = start;
  const blocks: Uint8Array[] = [];
  let total = 0;
  for (let block = r.subBlock(); block !== null; block = r.subBlock()) {
    blocks.push(block);
    total += block.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const block of blocks) {
    out.set(block, at);
    at += block.length;
  }
  return out;
}

/** Frame row of each decoded row: interlaced frames store rows 0, 8, 16, ..., then 4, 12, ..., 2, 6, ..., 1, 3, .... */
function rowOrder(height: number, interlaced: boolean): Uint32Array {
  const order = new Uint32Array(height);
  if (!interlaced) {
    for (let y = 0; y < height; y++) order[y] = y;
    return order;
  }
  let k = 0;
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]] as const) {
    for (let y = start; y < height; y += step) order[k++] = y;
  }
  return order;
}

/** Decodes the first frame onto its canvas. The caller has checked the canvas size against its pixel limit. */
export function decodeGif(bytes: Uint8Array, source: string): DecodedGif {
  const layout = readGifLayout(bytes, source);
  const { frame, palette, transparent } = layout;
  const indices = new Uint8Array(frame.width * frame.height);
  const written = decodeLzw(imageData(bytes, layout.dataStart, source), indices, GIF_LZW(layout.minCodeSize), source, 'GIF image data');
  if (written < indices.length) {
    throw new ImageDecodeError(source, `GIF image data ends after ${written} of ${indices.length} pixels`);
  }

  // RGBA of every index once; pixels are then copied as whole 32-bit words (both views share the byte order).
  const colours = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const inTable = palette !== null && 3 * i + 2 < palette.length;
    for (let c = 0; c < 3; c++) colours[4 * i + c] = palette === null ? i : inTable ? palette[3 * i + c]! : 0;
    colours[4 * i + 3] = i === transparent ? 0 : 255;
  }
  const words = new Uint32Array(colours.buffer);
  const { width, height } = layout;
  const data = new Uint8Array(width * height * 4);
  const canvas = new Uint32Array(data.buffer);
  canvas.fill(words[transparent ?? 0]!);
  const order = rowOrder(frame.height, layout.interlaced);
  for (let k = 0; k < frame.height; k++) {
    const row = (frame.top + order[k]!) * width + frame.left;
    const from = k * frame.width;
    for (let x = 0; x < frame.width; x++) canvas[row + x] = words[indices[from + x]!]!;
  }
  return { data, width, height };
}
