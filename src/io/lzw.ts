/**
 * Strict LZW decoding for GIF image data and TIFF strips. Every code must name an existing table entry or the one
 * about to be added (code <= next free code); anything else is a corrupt stream. That rule is what keeps the table
 * acyclic: each entry's prefix is an older entry, so writing out a string takes at most its length in steps, and
 * the whole decode is linear in input plus output. Output stops once the buffer is full.
 */
import { ImageDecodeError } from '../errors.js';

export interface LzwVariant {
  /** Bits of the literal alphabet: the GIF minimum code size (2-8), 8 for TIFF. */
  readonly rootBits: number;
  /** TIFF packs codes from the most significant bit of each byte, GIF from the least. */
  readonly msbFirst: boolean;
  /** TIFF widens codes one entry early ("early change"); GIF when the next code no longer fits. */
  readonly earlyChange: boolean;
  /** libtiff refuses a stream that does not open with a clear code; GIF decoders accept one that does not. */
  readonly clearFirst: boolean;
  /**
   * Table size at which the stream counts as corrupt. libtiff keeps counting entries past 4096 (unreachable with
   * 12-bit codes) and fails at 5119; GIF simply stops adding entries at 4096 (a "deferred clear").
   */
  readonly tableLimit: number;
}

export const GIF_LZW = (rootBits: number): LzwVariant => ({ rootBits, msbFirst: false, earlyChange: false, clearFirst: false, tableLimit: Infinity });
export const TIFF_LZW: LzwVariant = { rootBits: 8, msbFirst: true, earlyChange: true, clearFirst: true, tableLimit: 5119 };

const MAX_BITS = 12;
const TABLE = 1 << MAX_BITS;

/**
 * Decodes `data` into `out` until `out` is full, the end code comes or the data runs out; returns the number of
 * bytes written (callers decide whether a short result is an error). `what` names the stream in error messages.
 */
export function decodeLzw(data: Uint8Array, out: Uint8Array, variant: LzwVariant, source: string, what: string): number {
  const clear = 1 << variant.rootBits;
  const end = clear + 1;
  const prefix = new Uint16Array(TABLE);
  const suffix = new Uint8Array(TABLE);
  const head = new Uint8Array(TABLE);
  const length = new Uint16Array(TABLE);
  for (let c = 0; c < clear; c++) {
    suffix[c] = c;
    head[c] = c;
    length[c] = 1;
  }
  let width = variant.rootBits + 1;
  let next = clear + 2;
  let prev = -1;
  let cleared = false;
  let written = 0;
  let acc = 0;
  let accBits = 0;
  let pos = 0;
  const fail = (detail: string): never => {
    throw new ImageDecodeError(source, `${what}: corrupt LZW data (${detail} at byte ${pos} of ${data.length})`);
  };

  while (written < out.length) {
    while (accBits < width && pos < data.length) {
      acc = variant.msbFirst ? ((acc << 8) | data[pos]!) & 0xfffff : acc | (data[pos]! << accBits);
      pos++;
      accBits += 8;
    }
    if (accBits < width) break;
    let code: number;
    if (variant.msbFirst) {
      code = (acc >>> (accBits - width)) & ((1 << width) - 1);
    } else {
      code = acc & ((1 << width) - 1);
      acc >>>= width;
    }
    accBits -= width;

    if (code === clear) {
      width = variant.rootBits + 1;
      next = clear + 2;
      prev = -1;
      cleared = true;
      continue;
    }
    if (code === end) break;
    if (variant.clearFirst && !cleared) fail('the stream does not start with a clear code');
    if (code > next || (code === next && prev < 0)) {
      fail(`code ${code} with ${prev < 0 ? 'no previous code' : `next free code ${next}`}`);
    }

    // KwKwK: the code being defined right now is the previous string plus its own first byte.
    const known = code < next;
    const stringLength = known ? length[code]! : length[prev]! + 1;
    const first = known ? head[code]! : head[prev]!;
    if (prev >= 0) {
      if (next >= variant.tableLimit) fail(`code table overflow (${next} entries without a clear code)`);
      if (next < TABLE) {
        prefix[next] = prev;
        suffix[next] = first;
        head[next] = head[prev]!;
        length[next] = length[prev]! + 1;
      }
      next++;
      if (width < MAX_BITS && next >= (1 << width) - (variant.earlyChange ? 1 : 0)) width++;
    }

    // Strings are stored back to front: walk the prefix chain from the last byte, keeping what fits.
    let at = written + stringLength - 1;
    let c = code;
    for (let i = 0; i < stringLength; i++) {
      if (at < out.length) out[at] = suffix[c]!;
      at--;
      c = prefix[c]!;
    }
    written = Math.min(out.length, written + stringLength);
    prev = code;
  }
  return written;
}
