/**
 * From logits to masks at the original image size.
 *
 * The model sees the image stretched to 352x352 (the processor ignores the aspect ratio), so undoing the stretch is
 * a plain resize of each map to the original width x height. Interpolation: bilinear on the probabilities (sigmoid
 * first, then resize), as torch `F.interpolate(mode="bilinear", align_corners=False)` without antialiasing; this
 * keeps values in [0, 1] and matches what users of the Python model do. Thresholding follows the paper's evaluation
 * code: a pixel is foreground when p > t. The default t = 0.3 is the threshold of the paper's PhraseCut and
 * Pascal-5i tables (it reports 0.1-0.3 depending on the task).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { type ColormapName, colormapIndex, colormapTable } from './colormap.js';
import type { RawImage } from './image.js';
import { DEFAULT_MASK_THRESHOLD } from './mask_threshold.js';

export { DEFAULT_MASK_THRESHOLD } from './mask_threshold.js';

/** A single-channel float map, row-major. */
export interface ProbabilityMap {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

export interface OutputSize {
  readonly width: number;
  readonly height: number;
}

function checkSize(size: OutputSize, argument: string): void {
  const ok = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (typeof size !== 'object' || size === null || !ok(size.width) || !ok(size.height)) {
    throw new InvalidArgumentError(`${argument}: expected {width, height} with positive integers, got ${JSON.stringify(size)}`);
  }
}

function checkMap(map: ProbabilityMap, argument: string): void {
  if (typeof map !== 'object' || map === null || !(map.data instanceof Float32Array)) {
    throw new InvalidArgumentError(`${argument}: expected {data: Float32Array, width, height}`);
  }
  checkSize(map, argument);
  if (map.data.length !== map.width * map.height) {
    throw new ShapeError(`${argument}.data`, `${map.width * map.height} values for ${map.width}x${map.height}`, [map.data.length]);
  }
}

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * Source taps and weights along one axis for torch's bilinear upsampling with align_corners=False
 * (`area_pixel_compute_source_index`): the scale is a float32 and scale·(d + 0.5) − 0.5 is rounded to float32 once,
 * as torch's CPU build does (a fused multiply-add); rounding the product first moves weights by up to 2e-6.
 */
function bilinearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w1: Float64Array } {
  const scale = Math.fround(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float64Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(Math.fround(scale * (d + 0.5) - 0.5), 0);
    const idx = Math.trunc(src);
    i0[d] = idx;
    i1[d] = idx < inSize - 1 ? idx + 1 : idx;
    w1[d] = Math.fround(src - idx);
  }
  return { i0, i1, w1 };
}

/** Bilinear resize of a float map, as torch `F.interpolate(..., mode="bilinear", align_corners=False)`. */
export function resizeProbabilityMap(map: ProbabilityMap, size: OutputSize): ProbabilityMap {
  checkMap(map, 'map');
  checkSize(size, 'size');
  const { width: outW, height: outH } = size;
  const xs = bilinearTaps(map.width, outW);
  const ys = bilinearTaps(map.height, outH);
  const src = map.data;
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y]! * map.width;
    const r1 = ys.i1[y]! * map.width;
    const wy1 = ys.w1[y]!;
    const wy0 = 1 - wy1;
    for (let x = 0; x < outW; x++) {
      const c0 = xs.i0[x]!;
      const c1 = xs.i1[x]!;
      const wx1 = xs.w1[x]!;
      const wx0 = 1 - wx1;
      const top = src[r0 + c0]! * wx0 + src[r0 + c1]! * wx1;
      const bottom = src[r1 + c0]! * wx0 + src[r1 + c1]! * wx1;
      out[y * outW + x] = top * wy0 + bottom * wy1;
    }
  }
  return { data: out, width: outW, height: outH };
}

/**
 * Splits logits [B, H, W] (flat, as the model returns them) into per-prompt probability maps, each resized to
 * `size` (the original image size) when given.
 */
export function logitsToProbabilities(logits: Float32Array, shape: readonly [number, number, number], size?: OutputSize): ProbabilityMap[] {
  if (!(logits instanceof Float32Array)) throw new InvalidArgumentError('logits: expected a Float32Array');
  const [b, h, w] = shape;
  if (![b, h, w].every((v) => Number.isInteger(v) && v > 0) || logits.length !== b * h * w) {
    throw new ShapeError('logits', `${shape.join('*')} values for shape [${shape.join(', ')}]`, [logits.length]);
  }
  const maps: ProbabilityMap[] = [];
  for (let i = 0; i < b; i++) {
    const data = new Float32Array(h * w);
    for (let j = 0; j < h * w; j++) data[j] = sigmoid(logits[i * h * w + j]!);
    const map = { data, width: w, height: h };
    maps.push(size ? resizeProbabilityMap(map, size) : map);
  }
  return maps;
}

/**
 * Tensor form of `logitsToProbabilities`: logits [B, H, W] -> probabilities [B, height, width], on the active
 * backend. The caller owns the returned tensor; the input is not disposed.
 */
export function probabilitiesTensor(logits: tf.Tensor3D, size: OutputSize): tf.Tensor3D {
  if (!(logits instanceof tf.Tensor) || logits.rank !== 3) {
    throw new ShapeError('logits', '[B, H, W]', logits instanceof tf.Tensor ? logits.shape : String(logits));
  }
  checkSize(size, 'size');
  return tf.tidy(() => {
    const probs = tf.sigmoid(logits).expandDims(3) as tf.Tensor4D; // [B, H, W] -> [B, H, W, 1]
    const resized = tf.image.resizeBilinear(probs, [size.height, size.width], false, true);
    return resized.squeeze([3]) as tf.Tensor3D; // [B, h, w, 1] -> [B, h, w]
  });
}

function checkThreshold(threshold: number): void {
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
    throw new InvalidArgumentError(`threshold: expected a number in [0, 1], got ${String(threshold)}`);
  }
}

/**
 * Binary mask image (grey, 255 where p > threshold, else 0). The threshold is rounded to float32 first, as torch
 * does when comparing a float32 tensor with a Python number, so p = 0.3f is not above 0.3.
 */
export function binaryMask(map: ProbabilityMap, threshold = DEFAULT_MASK_THRESHOLD): RawImage {
  checkMap(map, 'map');
  checkThreshold(threshold);
  const t = Math.fround(threshold);
  const data = new Uint8Array(map.data.length);
  for (let i = 0; i < data.length; i++) data[i] = map.data[i]! > t ? 255 : 0;
  return { data, width: map.width, height: map.height, channels: 1 };
}

/** Probability image: grey (round(p·255)) or coloured through a colour map. */
export function probabilityImage(map: ProbabilityMap, colormap: ColormapName = 'grey'): RawImage {
  checkMap(map, 'map');
  const table = colormapTable(colormap);
  const n = map.data.length;
  if (colormap === 'grey') {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = colormapIndex(map.data[i]!);
    return { data, width: map.width, height: map.height, channels: 1 };
  }
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const k = colormapIndex(map.data[i]!) * 3;
    data[i * 3] = table[k]!;
    data[i * 3 + 1] = table[k + 1]!;
    data[i * 3 + 2] = table[k + 2]!;
  }
  return { data, width: map.width, height: map.height, channels: 3 };
}
