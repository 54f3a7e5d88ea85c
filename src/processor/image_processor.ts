/**
 * The image half of `CLIPSegProcessor`: Hugging Face's `ViTImageProcessor` on its slow (PIL) path.
 *
 * Steps, as in transformers `models/vit/image_processing_vit.py`: RGB conversion (done by `load_image` on the
 * Python side), Pillow resize to the target size ignoring the aspect ratio, rescale by 1/255 in float64 then
 * float32, normalise in float32, HWC -> CHW. For 8-bit input the result is bit-identical with transformers.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, InvalidArgumentError } from '../errors.js';
import { type RawImage, toRGB, validateRawImage } from './image.js';
import { PIL_RESAMPLE_CODES, type PillowResample, pillowResize } from './pillow_resize.js';

/** Target size: fixed height x width, or the shortest edge scaled to a length with the aspect ratio kept. */
export type ResizeTarget = { readonly height: number; readonly width: number } | { readonly shortestEdge: number };

export interface ImageProcessorOptions {
  readonly doResize: boolean;
  readonly size: ResizeTarget;
  readonly resample: PillowResample;
  readonly doRescale: boolean;
  readonly rescaleFactor: number;
  readonly doNormalize: boolean;
  readonly imageMean: readonly [number, number, number];
  readonly imageStd: readonly [number, number, number];
}

/** The values in `CIDAS/clipseg-rd64-refined`'s `preprocessor_config.json` (ImageNet statistics since 2023-01-04). */
export const CLIPSEG_IMAGE_DEFAULTS: ImageProcessorOptions = {
  doResize: true,
  size: { height: 352, width: 352 },
  resample: 'bilinear',
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.485, 0.456, 0.406],
  imageStd: [0.229, 0.224, 0.225],
};

export interface PixelValues {
  /** NCHW float32, RGB */
  readonly data: Float32Array;
  readonly shape: [number, number, number, number];
}

function positiveInteger(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`preprocessor config: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function boolean(value: unknown, key: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(`preprocessor config: ${key} must be a boolean, got ${JSON.stringify(value)}`);
  return value;
}

function triple(value: unknown, key: string, fallback: readonly [number, number, number]): readonly [number, number, number] {
  if (value === undefined || value === null) return fallback;
  const list = typeof value === 'number' ? [value, value, value] : value;
  if (!Array.isArray(list) || list.length !== 3 || !list.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new ConfigError(`preprocessor config: ${key} must be a number or a list of 3 numbers, got ${JSON.stringify(value)}`);
  }
  return [list[0] as number, list[1] as number, list[2] as number];
}

function parseSize(value: unknown): ResizeTarget {
  if (value === undefined || value === null) return CLIPSEG_IMAGE_DEFAULTS.size;
  if (typeof value === 'number') {
    const s = positiveInteger(value, 'size');
    return { height: s, width: s };
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if ('height' in record || 'width' in record) {
      return { height: positiveInteger(record.height, 'size.height'), width: positiveInteger(record.width, 'size.width') };
    }
    if ('shortest_edge' in record) return { shortestEdge: positiveInteger(record.shortest_edge, 'size.shortest_edge') };
  }
  throw new ConfigError(`preprocessor config: size must be an integer, {height, width} or {shortest_edge}, got ${JSON.stringify(value)}`);
}

function parseResample(value: unknown): PillowResample {
  if (value === undefined || value === null) return CLIPSEG_IMAGE_DEFAULTS.resample;
  if (typeof value === 'number' && value in PIL_RESAMPLE_CODES) return PIL_RESAMPLE_CODES[value]!;
  if (typeof value === 'string' && Object.values(PIL_RESAMPLE_CODES).includes(value as PillowResample)) return value as PillowResample;
  throw new ConfigError(`preprocessor config: resample must be a PIL code 0-5 or a filter name, got ${JSON.stringify(value)}`);
}

/** Output (height, width) for one image, as transformers' `get_resize_output_image_size` computes it. */
export function targetSize(size: ResizeTarget, height: number, width: number): { height: number; width: number } {
  if ('height' in size) return { height: size.height, width: size.width };
  const short = Math.min(height, width);
  const long = Math.max(height, width);
  const newLong = Math.trunc((size.shortestEdge * long) / short);
  return height <= width ? { height: size.shortestEdge, width: newLong } : { height: newLong, width: size.shortestEdge };
}

export class CLIPSegImageProcessor {
  readonly options: ImageProcessorOptions;

  constructor(options: Partial<ImageProcessorOptions> = {}) {
    this.options = { ...CLIPSEG_IMAGE_DEFAULTS, ...options };
    const { rescaleFactor, imageStd } = this.options;
    if (!Number.isFinite(rescaleFactor)) throw new ConfigError(`rescaleFactor must be a finite number, got ${rescaleFactor}`);
    if (imageStd.some((s) => s === 0)) throw new ConfigError(`imageStd must not contain 0, got [${imageStd.join(', ')}]`);
  }

  /** Reads the snake_case keys of a `preprocessor_config.json` object; absent keys take the CLIPSeg defaults. */
  static fromConfig(json: unknown): CLIPSegImageProcessor {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ConfigError(`preprocessor config: expected a JSON object, got ${json === null ? 'null' : typeof json}`);
    }
    const c = json as Record<string, unknown>;
    const d = CLIPSEG_IMAGE_DEFAULTS;
    const rescaleFactor = c.rescale_factor ?? d.rescaleFactor;
    if (typeof rescaleFactor !== 'number' || !Number.isFinite(rescaleFactor)) {
      throw new ConfigError(`preprocessor config: rescale_factor must be a number, got ${JSON.stringify(c.rescale_factor)}`);
    }
    return new CLIPSegImageProcessor({
      doResize: boolean(c.do_resize, 'do_resize', d.doResize),
      size: parseSize(c.size),
      resample: parseResample(c.resample),
      doRescale: boolean(c.do_rescale, 'do_rescale', d.doRescale),
      rescaleFactor,
      doNormalize: boolean(c.do_normalize, 'do_normalize', d.doNormalize),
      imageMean: triple(c.image_mean, 'image_mean', d.imageMean),
      imageStd: triple(c.image_std, 'image_std', d.imageStd),
    });
  }

  /** Resizes one image (converted to RGB) as the processor would, before rescaling. */
  resize(image: RawImage): RawImage {
    const rgb = toRGB(image);
    if (!this.options.doResize) return rgb;
    const { height, width } = targetSize(this.options.size, rgb.height, rgb.width);
    return pillowResize(rgb, width, height, this.options.resample);
  }

  /**
   * Rescales and normalises one RGB image into `out` at `offset`, CHW. Each step is rounded to float32 as numpy
   * does: x·factor in float64 then float32, (x − mean) in float32, / std in float32.
   */
  private writeCHW(rgb: RawImage, out: Float32Array, offset: number): void {
    const { doRescale, rescaleFactor, doNormalize, imageMean, imageStd } = this.options;
    const plane = rgb.width * rgb.height;
    const table = new Float32Array(256);
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(imageMean[c]!);
      const std = Math.fround(imageStd[c]!);
      for (let v = 0; v < 256; v++) {
        let x = doRescale ? Math.fround(v * rescaleFactor) : v;
        if (doNormalize) x = Math.fround(Math.fround(x - mean) / std);
        table[v] = x;
      }
      const base = offset + c * plane;
      for (let i = 0; i < plane; i++) out[base + i] = table[rgb.data[i * 3 + c]!]!;
    }
  }

  /** Preprocesses a batch into NCHW float32 `pixel_values`; every image must come out at the same size. */
  preprocess(images: readonly RawImage[]): PixelValues {
    if (!Array.isArray(images) || images.length === 0) {
      throw new InvalidArgumentError(`images: expected a non-empty array of images, got ${Array.isArray(images) ? 'an empty array' : typeof images}`);
    }
    const resized = images.map((img, i) => this.resize(validateRawImage(img, `images[${i}]`)));
    const { width, height } = resized[0]!;
    resized.forEach((img, i) => {
      if (img.width !== width || img.height !== height) {
        throw new InvalidArgumentError(
          `images[${i}]: resized to ${img.width}x${img.height} but images[0] to ${width}x${height}; a batch needs one size (set do_resize with a fixed {height, width})`,
        );
      }
    });
    const plane = width * height;
    const data = new Float32Array(resized.length * 3 * plane);
    resized.forEach((img, i) => this.writeCHW(img, data, i * 3 * plane));
    return { data, shape: [resized.length, 3, height, width] };
  }

  /** As `preprocess`, returned as a `tf.Tensor4D` [B, 3, H, W] that the caller owns. */
  preprocessTensor(images: readonly RawImage[]): tf.Tensor4D {
    const { data, shape } = this.preprocess(images);
    return tf.tensor4d(data, shape, 'float32');
  }
}
