/**
 * A decoded image held as interleaved 8-bit samples, row-major (`data[(y * width + x) * channels + c]`).
 * Browser-safe: no file access here; decoding lives in `src/io/image_io.ts`.
 */
import { InvalidArgumentError } from '../errors.js';

export type Channels = 1 | 3 | 4;

export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: Channels;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Checks that `value` is a well-formed RawImage and returns it typed; `argument` names it in error messages. */
export function validateRawImage(value: unknown, argument = 'image'): RawImage {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(`${argument}: expected an image {data, width, height, channels}, got ${value === null ? 'null' : typeof value}`);
  }
  const { data, width, height, channels } = value as Record<string, unknown>;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new InvalidArgumentError(`${argument}.data: expected a Uint8Array, got ${describe(data)}`);
  }
  if (!isPositiveInteger(width) || !isPositiveInteger(height)) {
    throw new InvalidArgumentError(`${argument}: expected positive integer width and height, got ${String(width)}x${String(height)}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new InvalidArgumentError(`${argument}.channels: expected 1, 3 or 4, got ${String(channels)}`);
  }
  const expected = width * height * channels;
  if (data.length !== expected) {
    throw new InvalidArgumentError(
      `${argument}.data: expected ${expected} bytes for ${width}x${height}x${channels}, got ${data.length}`,
    );
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
  return { data: bytes, width, height, channels };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

/** Builds a RawImage after validating sizes. */
export function createRawImage(data: Uint8Array, width: number, height: number, channels: Channels): RawImage {
  return validateRawImage({ data, width, height, channels });
}

/**
 * Converts to 3-channel RGB the way PIL's `convert("RGB")` does for L, RGB and RGBA images:
 * grey is replicated and alpha is dropped (not composited). Returns the input itself when it is already RGB.
 */
export function toRGB(image: RawImage): RawImage {
  const img = validateRawImage(image);
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  const src = img.data;
  if (img.channels === 1) {
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  } else {
    for (let i = 0; i < n; i++) {
      out[i * 3] = src[i * 4]!;
      out[i * 3 + 1] = src[i * 4 + 1]!;
      out[i * 3 + 2] = src[i * 4 + 2]!;
    }
  }
  return { data: out, width: img.width, height: img.height, channels: 3 };
}

/** Converts to RGBA; missing alpha becomes 255 (opaque). */
export function toRGBA(image: RawImage): RawImage {
  const img = validateRawImage(image);
  if (img.channels === 4) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 4);
  const src = img.data;
  const step = img.channels;
  for (let i = 0; i < n; i++) {
    const r = src[i * step]!;
    out[i * 4] = r;
    out[i * 4 + 1] = step === 1 ? r : src[i * step + 1]!;
    out[i * 4 + 2] = step === 1 ? r : src[i * step + 2]!;
    out[i * 4 + 3] = 255;
  }
  return { data: out, width: img.width, height: img.height, channels: 4 };
}

/**
 * Mirrors and rotates as PIL's `Image.transpose` does, indexed by EXIF orientation (1-8), i.e. what
 * `ImageOps.exif_transpose` applies: 2 flip left-right, 3 rotate 180, 4 flip top-bottom, 5 transpose,
 * 6 rotate 270 (90 clockwise), 7 transverse, 8 rotate 90 (counter-clockwise).
 */
export function applyExifOrientation(image: RawImage, orientation: number): RawImage {
  const img = validateRawImage(image);
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) {
    throw new InvalidArgumentError(`orientation: expected an integer 1..8, got ${String(orientation)}`);
  }
  if (orientation === 1) return img;
  const { width: w, height: h, channels: c, data: src } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sx = x; sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        default: sx = w - 1 - y; sy = x; break;
      }
      const o = (y * ow + x) * c;
      const s = (sy * w + sx) * c;
      for (let k = 0; k < c; k++) out[o + k] = src[s + k]!;
    }
  }
  return { data: out, width: ow, height: oh, channels: c };
}
