/**
 * Pillow's `Image.resize` for 8-bit images, bit-exact.
 *
 * Mirrors python-pillow/Pillow `src/libImaging/Resample.c` (convolution resampling: BILINEAR, BICUBIC, BOX,
 * HAMMING, LANCZOS), `Geometry.c` `ImagingScaleAffine` (NEAREST) and `Image.py` `Image.resize` (the same-size
 * copy and the premultiplied path for RGBA). The convolution is separable, horizontal pass first, with a uint8
 * intermediate, 22-bit fixed-point coefficients and an accumulator starting at one half. A pass is skipped when
 * its axis keeps its size.
 */
import { InvalidArgumentError } from '../errors.js';
import { type RawImage, validateRawImage } from './image.js';

export type PillowResample = 'nearest' | 'bilinear' | 'bicubic' | 'box' | 'hamming' | 'lanczos';

/** PIL's integer codes (`Image.Resampling`), as stored in `preprocessor_config.json` under `resample`. */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, PillowResample>> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

interface Filter {
  readonly support: number;
  weight(x: number): number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Readonly<Record<Exclude<PillowResample, 'nearest'>, Filter>> = {
  box: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    weight: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    weight: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      // Pillow writes the constants as C floats (0.54f, 0.46f), so they are float32-rounded.
      return (Math.sin(px) / px) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

interface Coefficients {
  /** first source index per output index */
  readonly start: Int32Array;
  /** number of taps per output index */
  readonly count: Int32Array;
  /** fixed-point weights, `ksize` slots per output index */
  readonly weights: Int32Array;
  readonly ksize: number;
}

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole-image box [0, inSize). */
function computeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const ss = 1 / filterscale;
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C truncates toward zero on the (int) casts; the operands here are > -1 so trunc matches.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

function clip8(acc: number): number {
  // `acc >> 22` on the C int, then the lookup table's clamp to 0..255.
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One horizontal pass over rows [rowStart, rowStart + rows) of `src`. */
function resampleHorizontal(
  src: Uint8Array, inW: number, channels: number, rowStart: number, rows: number, outW: number, co: Coefficients,
): Uint8Array {
  const out = new Uint8Array(outW * rows * channels);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * inW * channels;
    const rowOut = y * outW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = co.start[xx]!;
      const n = co.count[xx]!;
      const kOff = xx * co.ksize;
      for (let c = 0; c < channels; c++) {
        let acc = HALF;
        for (let x = 0; x < n; x++) acc += src[rowIn + (x + xmin) * channels + c]! * co.weights[kOff + x]!;
        out[rowOut + xx * channels + c] = clip8(acc);
      }
    }
  }
  return out;
}

function resampleVertical(src: Uint8Array, width: number, channels: number, outH: number, co: Coefficients, rowOffset: number): Uint8Array {
  const out = new Uint8Array(width * outH * channels);
  const stride = width * channels;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = co.start[yy]! - rowOffset;
    const n = co.count[yy]!;
    const kOff = yy * co.ksize;
    for (let i = 0; i < stride; i++) {
      let acc = HALF;
      for (let y = 0; y < n; y++) acc += src[(y + ymin) * stride + i]! * co.weights[kOff + y]!;
      out[yy * stride + i] = clip8(acc);
    }
  }
  return out;
}

/** `ImagingResampleInner` on interleaved 8-bit samples. */
function convolutionResize(img: RawImage, outW: number, outH: number, filter: Filter): Uint8Array {
  const { width: inW, height: inH, channels } = img;
  const needHorizontal = outW !== inW;
  const needVertical = outH !== inH;
  const vertical = computeCoefficients(inH, outH, filter);
  // The horizontal pass only produces the rows the vertical pass will read.
  const firstRow = vertical.start[0]!;
  const lastRow = vertical.start[outH - 1]! + vertical.count[outH - 1]!;
  let data = img.data;
  let rowOffset = 0;
  if (needHorizontal) {
    const horizontal = computeCoefficients(inW, outW, filter);
    data = resampleHorizontal(data, inW, channels, firstRow, lastRow - firstRow, outW, horizontal);
    rowOffset = firstRow;
  }
  if (needVertical) {
    data = resampleVertical(data, needHorizontal ? outW : inW, channels, outH, vertical, rowOffset);
  }
  return data;
}

/**
 * `ImagingScaleAffine`: output pixel i reads source int(0.5·a + i·a) with a = in/out, where the position is
 * accumulated by repeated addition exactly as the C loop does (this decides which pixel is picked at ties).
 * A position outside the source gives -1; Pillow leaves such pixels at zero.
 */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const a = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = a * 0.5;
  for (let i = 0; i < outSize; i++) {
    const v = pos < 0 ? -1 : Math.trunc(pos);
    idx[i] = v < inSize ? v : -1;
    pos += a;
  }
  return idx;
}

function nearestResize(img: RawImage, outW: number, outH: number): Uint8Array {
  const { width: inW, channels, data } = img;
  const xs = nearestIndices(inW, outW);
  const ys = nearestIndices(img.height, outH);
  const out = new Uint8Array(outW * outH * channels);
  for (let y = 0; y < outH; y++) {
    if (ys[y]! < 0) continue;
    const rowIn = ys[y]! * inW * channels;
    const rowOut = y * outW * channels;
    for (let x = 0; x < outW; x++) {
      if (xs[x]! < 0) continue;
      const s = rowIn + xs[x]! * channels;
      const o = rowOut + x * channels;
      for (let c = 0; c < channels; c++) out[o + c] = data[s + c]!;
    }
  }
  return out;
}

/** RGBA -> RGBa (Pillow `rgbA2rgba`): colour times alpha / 255 with the MULDIV255 rounding. */
function premultiply(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += 4) {
    const alpha = data[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = data[i + c]! * alpha + 128;
      out[i + c] = ((t >> 8) + t) >> 8;
    }
    out[i + 3] = alpha;
  }
  return out;
}

/** RGBa -> RGBA (Pillow `rgba2rgbA`): integer division by alpha, clamped; alpha 0 and 255 pass through. */
function unpremultiply(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += 4) {
    const alpha = data[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const v = data[i + c]!;
      out[i + c] = alpha === 255 || alpha === 0 ? v : Math.min(255, Math.floor((255 * v) / alpha));
    }
    out[i + 3] = alpha;
  }
  return out;
}

function checkSize(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name}: expected a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Resizes like Pillow's `Image.resize((outWidth, outHeight), resample)` on an L, RGB or RGBA image.
 * RGBA with a convolution filter is resized premultiplied (Pillow converts to RGBa and back).
 */
export function pillowResize(image: RawImage, outWidth: number, outHeight: number, resample: PillowResample = 'bilinear'): RawImage {
  const img = validateRawImage(image);
  checkSize(outWidth, 'outWidth');
  checkSize(outHeight, 'outHeight');
  if (resample !== 'nearest' && !(resample in FILTERS)) {
    throw new InvalidArgumentError(`resample: expected one of nearest, ${Object.keys(FILTERS).join(', ')}, got ${String(resample)}`);
  }
  const result = (data: Uint8Array): RawImage => ({ data, width: outWidth, height: outHeight, channels: img.channels });
  if (outWidth === img.width && outHeight === img.height) return result(img.data.slice());
  if (resample === 'nearest') return result(nearestResize(img, outWidth, outHeight));
  const filter = FILTERS[resample];
  if (img.channels === 4) {
    const pre = { ...img, data: premultiply(img.data) };
    return result(unpremultiply(convolutionResize(pre, outWidth, outHeight, filter)));
  }
  return result(convolutionResize(img, outWidth, outHeight, filter));
}
