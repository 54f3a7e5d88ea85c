/**
 * Visual prompts as CLIPSeg was trained on them: the paper's best prompt engineering ("crop + 10% background +
 * blur", §4 / Table 2), `crop_blur_highlight352` in timojl/clipseg (`datasets/utils.py` -> `evaluation_utils.py`
 * `img_preprocess(blur=3, center_context=0.1, bg_fac=0.1, image_size=352)`).
 *
 * All of it happens on ImageNet-normalised pixel values, so the darkened background moves towards 0, the dataset
 * mean, not towards black:
 *   1. blend = img·mask + 0.1·blur(img)·(1 − mask), blur = cv2.GaussianBlur 15x15, sigma 3, reflect-101 border;
 *   2. crop to the bounding box of the mask's maximum, widened by 10% of its extent per side and clamped;
 *   3. zero-pad to a centred square; 4. nearest resize (torch `F.interpolate` default) to 352x352.
 * The original `crop_mask` measures the x extent against the mask's height and the y extent against its width;
 * that only differs for non-square inputs (training images are square 352x352), and here each axis uses its own size.
 */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { type RawImage, toRGB, validateRawImage } from './image.js';
import { CLIPSegImageProcessor, targetSize } from './image_processor.js';
import { pillowResize } from './pillow_resize.js';

export interface VisualPromptOptions {
  /** output side; default 352 */
  readonly size?: number;
  /** background intensity factor; default 0.1 */
  readonly backgroundFactor?: number;
  /** Gaussian blur sigma (kernel 15x15); default 3, 0 disables the blur */
  readonly blurSigma?: number;
  /** bounding-box widening per side, as a fraction of the box extent; default 0.1 */
  readonly context?: number;
}

/** Normalised CHW pixel values of one RGB image (3 x height x width). */
export interface NormalizedImage {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

const KERNEL_SIZE = 15;

/** cv2.getGaussianKernel(15, sigma) for float images: computed in double, normalised, stored as float32. */
function gaussianKernel(sigma: number): Float64Array {
  const k = new Float64Array(KERNEL_SIZE);
  let sum = 0;
  for (let i = 0; i < KERNEL_SIZE; i++) {
    const x = i - (KERNEL_SIZE - 1) / 2;
    k[i] = Math.exp((-0.5 * x * x) / (sigma * sigma));
    sum += k[i]!;
  }
  for (let i = 0; i < KERNEL_SIZE; i++) k[i] = Math.fround(k[i]! / sum);
  return k;
}

/** OpenCV BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba), repeated for kernels wider than the image. */
function reflect101(p: number, n: number): number {
  if (n === 1) return 0;
  let i = p;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** Gaussian blur of each channel plane, rows first then columns, float32 intermediate (cv2.GaussianBlur on float32). */
export function gaussianBlur(image: NormalizedImage, sigma = 3): Float32Array {
  const { data, width: w, height: h } = image;
  const k = gaussianKernel(sigma);
  const half = (KERNEL_SIZE - 1) / 2;
  const plane = w * h;
  const channels = data.length / plane;
  const tmp = new Float32Array(data.length);
  const out = new Float32Array(data.length);
  const xIdx = Int32Array.from({ length: w + 2 * half }, (_, i) => reflect101(i - half, w));
  const yIdx = Int32Array.from({ length: h + 2 * half }, (_, i) => reflect101(i - half, h));
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let y = 0; y < h; y++) {
      const row = base + y * w;
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let t = 0; t < KERNEL_SIZE; t++) acc += k[t]! * data[row + xIdx[x + t]!]!;
        tmp[row + x] = acc;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let t = 0; t < KERNEL_SIZE; t++) acc += k[t]! * tmp[base + yIdx[y + t]! * w + x]!;
        out[base + y * w + x] = acc;
      }
    }
  }
  return out;
}

/** [x0, x1) x [y0, y1): the box of the pixels equal to the mask's maximum (all pixels for a constant mask). */
export function maskBoundingBox(mask: ArrayLike<number>, width: number, height: number): { x0: number; x1: number; y0: number; y1: number } {
  let max = -Infinity;
  for (let i = 0; i < mask.length; i++) if (mask[i]! > max) max = mask[i]!;
  let x0 = width;
  let x1 = 0;
  let y0 = height;
  let y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] !== max) continue;
      if (x < x0) x0 = x;
      if (x >= x1) x1 = x + 1;
      if (y < y0) y0 = y;
      if (y >= y1) y1 = y + 1;
    }
  }
  return { x0, x1, y0, y1 };
}

/** torch legacy nearest (`F.interpolate` default mode): src = min(floor(d · float32(in/out)), in − 1). */
function torchNearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = Math.fround(inSize / outSize);
  return Int32Array.from({ length: outSize }, (_, d) => Math.min(Math.floor(Math.fround(d * scale)), inSize - 1));
}

function positive(value: number, name: string, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidArgumentError(`options.${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`);
  }
  return value;
}

/**
 * Builds the visual prompt from normalised pixel values [3, H, W] and a mask [H, W] with values in [0, 1]
 * (soft masks weight the blend; the crop box is the box of the mask's maximum). Returns [3, size, size].
 */
export function makeVisualPromptNormalized(image: NormalizedImage, mask: Float32Array | Uint8Array, options: VisualPromptOptions = {}): Float32Array {
  const size = options.size ?? 352;
  if (!Number.isInteger(size) || size < 1) throw new InvalidArgumentError(`options.size: expected a positive integer, got ${String(size)}`);
  const bg = Math.fround(positive(options.backgroundFactor ?? 0.1, 'backgroundFactor', true));
  const sigma = positive(options.blurSigma ?? 3, 'blurSigma', true);
  const context = positive(options.context ?? 0.1, 'context', true);
  if (typeof image !== 'object' || image === null || !(image.data instanceof Float32Array)) {
    throw new InvalidArgumentError('image: expected {data: Float32Array, width, height} holding [3, H, W] values');
  }
  const { width: w, height: h } = image;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || image.data.length !== 3 * w * h) {
    throw new ShapeError('image.data', `3*${h}*${w} values ([3, H, W])`, [image.data.length]);
  }
  if (!(mask instanceof Float32Array || mask instanceof Uint8Array) || mask.length !== w * h) {
    throw new ShapeError('mask', `${w * h} values ([${h}, ${w}]) as Float32Array or Uint8Array`, mask?.length === undefined ? String(mask) : [mask.length]);
  }
  for (let i = 0; i < mask.length; i++) {
    if (!(mask[i]! >= 0 && mask[i]! <= 1)) throw new InvalidArgumentError(`mask: values must lie in [0, 1], got ${mask[i]} at index ${i}`);
  }
  const plane = w * h;
  const blurred = sigma > 0 ? gaussianBlur(image, sigma) : image.data;
  const blend = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const m = mask[i]!;
      const fg = Math.fround(image.data[c * plane + i]! * m);
      const back = Math.fround(Math.fround(bg * blurred[c * plane + i]!) * Math.fround(1 - m));
      blend[c * plane + i] = fg + back;
    }
  }
  const box = maskBoundingBox(mask, w, h);
  const boxW = box.x1 - box.x0;
  const boxH = box.y1 - box.y0;
  const x0 = Math.trunc(Math.max(0, box.x0 - context * boxW));
  const x1 = Math.trunc(Math.min(w, box.x1 + context * boxW));
  const y0 = Math.trunc(Math.max(0, box.y0 - context * boxH));
  const y1 = Math.trunc(Math.min(h, box.y1 + context * boxH));
  const cropW = x1 - x0;
  const cropH = y1 - y0;
  const side = Math.max(cropW, cropH);
  // Centred zero padding; the odd pixel goes right/bottom (pad_to_square).
  const padX = Math.floor((side - cropW) / 2);
  const padY = Math.floor((side - cropH) / 2);
  const index = torchNearestIndex(side, size);
  const out = new Float32Array(3 * size * size);
  for (let oy = 0; oy < size; oy++) {
    const sy = index[oy]! - padY;
    if (sy < 0 || sy >= cropH) continue;
    for (let ox = 0; ox < size; ox++) {
      const sx = index[ox]! - padX;
      if (sx < 0 || sx >= cropW) continue;
      for (let c = 0; c < 3; c++) out[c * size * size + oy * size + ox] = blend[c * plane + (sy + y0) * w + (sx + x0)]!;
    }
  }
  return out;
}

/** Axis-aligned box in pixels: [x, y, width, height]. */
export type PromptBox = readonly [number, number, number, number];

export interface MakeVisualPromptOptions extends VisualPromptOptions {
  /**
   * Short side the image is first resized to (Pillow bilinear, aspect kept; the mask nearest), default 352: training
   * prompts are square crops of the short side resized to 352, so the fixed 15x15 blur has the same relative
   * strength. null keeps the image size.
   */
  readonly shortSide?: number | null;
  /** normalisation statistics; default the CLIPSeg processor's (ImageNet) */
  readonly processor?: CLIPSegImageProcessor;
}

function maskFromBox(box: PromptBox, width: number, height: number): RawImage {
  if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new InvalidArgumentError(`box: expected [x, y, width, height] numbers, got ${JSON.stringify(box)}`);
  }
  const [bx, by, bw, bh] = box;
  const x0 = Math.max(0, Math.round(bx));
  const y0 = Math.max(0, Math.round(by));
  const x1 = Math.min(width, Math.round(bx + bw));
  const y1 = Math.min(height, Math.round(by + bh));
  if (x1 <= x0 || y1 <= y0) {
    throw new InvalidArgumentError(`box: [${box.join(', ')}] covers no pixel of the ${width}x${height} image`);
  }
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) data.fill(255, y * width + x0, y * width + x1);
  return { data, width, height, channels: 1 };
}

/**
 * User-facing visual prompt: from an image and a binary mask image (foreground where its first channel is ≥ 128)
 * or a box [x, y, width, height], returns normalised `conditional_pixel_values` [3, size, size] (default 352).
 */
export function makeVisualPrompt(image: RawImage, region: RawImage | PromptBox, options: MakeVisualPromptOptions = {}): Float32Array {
  let rgb = toRGB(validateRawImage(image, 'image'));
  let mask = Array.isArray(region) ? maskFromBox(region as PromptBox, rgb.width, rgb.height) : validateRawImage(region, 'mask');
  if (mask.width !== rgb.width || mask.height !== rgb.height) {
    throw new ShapeError('mask', `the image size ${rgb.width}x${rgb.height}`, `${mask.width}x${mask.height}`);
  }
  const shortSide = options.shortSide === undefined ? 352 : options.shortSide;
  if (shortSide !== null) {
    const { width, height } = targetSize({ shortestEdge: positive(shortSide, 'shortSide') }, rgb.height, rgb.width);
    rgb = pillowResize(rgb, width, height, 'bilinear');
    mask = pillowResize(mask, width, height, 'nearest');
  }
  const weights = new Float32Array(rgb.width * rgb.height);
  let any = false;
  for (let i = 0; i < weights.length; i++) {
    if (mask.data[i * mask.channels]! >= 128) {
      weights[i] = 1;
      any = true;
    }
  }
  if (!any) throw new InvalidArgumentError('mask: no foreground pixel (expected values >= 128 in its first channel)');
  const processor = options.processor ?? new CLIPSegImageProcessor();
  const normalizer = new CLIPSegImageProcessor({ ...processor.options, doResize: false });
  const { data } = normalizer.preprocess([rgb]);
  return makeVisualPromptNormalized({ data, width: rgb.width, height: rgb.height }, weights, options);
}
