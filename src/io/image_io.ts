/**
 * Image loading and PNG writing.
 *
 * `loadImage` reproduces what transformers' `load_image(path)` hands to the processor: PIL decoding, then
 * `ImageOps.exif_transpose`. JPEGs are decoded by libjpeg's algorithms (see jpeg.ts), which gives Pillow's pixels
 * exactly; GIF and TIFF have strict decoders of their own (gif.ts, tiff.ts: the first frame, as PIL reads it); jimp
 * decodes PNG, BMP and CMYK JPEGs (within 1-2 levels of Pillow).
 * Orientation is applied here by PIL's rule rather than by a decoder, and 16-bit PNG samples are reduced to 8 bits
 * the way PIL does (high byte for colour, clipping for 16-bit grey).
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { Jimp, loadFont } from 'jimp';
import { SANS_12_BLACK, SANS_16_BLACK, SANS_32_BLACK, SANS_64_BLACK } from 'jimp/fonts';
import { FileFormatError, FileNotFoundError, ImageDecodeError, InvalidArgumentError, ShapeError, formatShape } from '../errors.js';
import { type Channels, type RawImage, applyExifOrientation, toRGBA, validateRawImage } from '../processor/image.js';
import type { LegendFont } from '../processor/overlay.js';
import { writeFileAtomic } from './atomic.js';
import { decodeGif } from './gif.js';
import { type ImageHeader, readImageHeader, stripJpegApp1 } from './image_header.js';
import { decodeJpeg } from './jpeg.js';
import { decodeTiff } from './tiff.js';

export interface LoadImageOptions {
  /** Largest accepted width × height, checked from the file header before decoding. Default 50 million. */
  readonly maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 50e6;

export type ImageSource = string | Uint8Array | RawImage | tf.Tensor3D;

function maxPixelsOf(options: LoadImageOptions | undefined): number {
  const value = options?.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof value !== 'number' || !(value >= 1)) {
    throw new InvalidArgumentError(`options.maxPixels: expected a number >= 1, got ${String(value)}`);
  }
  return value;
}

/**
 * Loads an image from a file path, encoded bytes (Uint8Array or Buffer), a raw pixel buffer
 * `{data, width, height, channels}` or a `[H, W, C]` tensor (see `rawImageFromTensor`).
 * EXIF orientation is applied as PIL's `ImageOps.exif_transpose` does.
 */
export async function loadImage(source: ImageSource, options?: LoadImageOptions): Promise<RawImage> {
  const maxPixels = maxPixelsOf(options);
  if (typeof source === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new FileNotFoundError(source, 'image file');
      if (code === 'EISDIR') throw new FileFormatError(source, 'is a directory, expected an image file');
      throw new FileFormatError(source, `cannot read image file: ${(err as Error).message}`, { cause: err });
    }
    return decodeImage(bytes, source, { maxPixels });
  }
  if (source instanceof Uint8Array) return decodeImage(source, '<image bytes>', { maxPixels });
  if (source instanceof tf.Tensor) return rawImageFromTensor(source as tf.Tensor3D, maxPixels);
  if (typeof source === 'object' && source !== null && 'data' in source) {
    const img = validateRawImage(source, 'source');
    checkPixelLimit(img.width, img.height, maxPixels, '<raw image>');
    return img;
  }
  throw new InvalidArgumentError(
    `source: expected a file path, image bytes, a raw image {data, width, height, channels} or a [H, W, C] tensor, got ${
      source === null ? 'null' : typeof source
    }`,
  );
}

function checkPixelLimit(width: number, height: number, maxPixels: number, source: string): void {
  if (width === 0 || height === 0) throw new ImageDecodeError(source, `image has zero size (${width}x${height})`);
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      source,
      `image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} (raise options.maxPixels to accept it)`,
    );
  }
}

/** Decodes encoded image bytes; `source` names them in error messages. */
export async function decodeImage(bytes: Uint8Array, source: string, options?: LoadImageOptions): Promise<RawImage> {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`bytes: expected a Uint8Array, got ${typeof bytes}`);
  const maxPixels = maxPixelsOf(options);
  const header = readImageHeader(bytes, source);
  checkPixelLimit(header.width, header.height, maxPixels, source);
  // JPEG, GIF and TIFF have decoders of their own; jimp decodes PNG and BMP.
  const own =
    header.format === 'jpeg'
      ? await decodeJpeg(bytes, source)
      : header.format === 'gif'
        ? decodeGif(bytes, source)
        : header.format === 'tiff'
          ? decodeTiff(bytes, source)
          : null;
  const bitmap = own ?? (await decodeWithJimp(bytes, source, header, maxPixels));
  if (bitmap.width !== header.width || bitmap.height !== header.height || bitmap.data.length !== bitmap.width * bitmap.height * 4) {
    throw new ImageDecodeError(
      source,
      `decoded ${bitmap.width}x${bitmap.height} pixels but the header says ${header.width}x${header.height}`,
    );
  }
  // The own decoders' arrays are fresh ones, used as is; jimp's bitmap is copied.
  const rgba =
    own !== null
      ? own.data
      : header.format === 'png' && header.bitDepth === 16
        ? reduce16(bitmap.data, header)
        : Uint8Array.from(bitmap.data);
  return applyExifOrientation(compact(rgba, bitmap.width, bitmap.height, header), header.orientation);
}

/** RGBA pixels, 16-bit samples for 16-bit PNGs and 8-bit otherwise. */
interface Bitmap {
  readonly data: ArrayLike<number>;
  readonly width: number;
  readonly height: number;
}

/** Decodes with jimp; JPEGs lose their APP1 segments first so that jimp does not rotate them by its own EXIF rule. */
async function decodeWithJimp(bytes: Uint8Array, source: string, header: ImageHeader, maxPixels: number): Promise<Bitmap> {
  const payload = header.format === 'jpeg' ? stripJpegApp1(bytes, source) : bytes;
  try {
    const image = await Jimp.fromBuffer(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), {
      'image/png': header.format === 'png' && header.bitDepth === 16 ? { skipRescale: true } : {},
      'image/jpeg': { maxResolutionInMP: Math.ceil(maxPixels / 1e6), maxMemoryUsageInMB: Math.ceil((maxPixels * 8) / 2 ** 20) + 64 },
    });
    return image.bitmap;
  } catch (err) {
    throw new ImageDecodeError(source, `cannot decode ${header.format.toUpperCase()} data: ${(err as Error).message}`, { cause: err });
  }
}

/** PIL's 16-bit PNG modes: colour and grey+alpha keep the high byte; plain 16-bit grey ("I;16") clips at 255. */
function reduce16(data: ArrayLike<number>, header: ImageHeader): Uint8Array {
  const out = new Uint8Array(data.length);
  const clip = header.grey && !hasAlphaChannel16(data);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = (i & 3) === 3 ? v >> 8 : clip ? Math.min(v, 255) : v >> 8;
  }
  return out;
}

function hasAlphaChannel16(data: ArrayLike<number>): boolean {
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 65535) return true;
  return false;
}

/** RGBA -> the smallest faithful layout: RGBA when any pixel is not opaque, else grey (for grey sources) or RGB. */
function compact(rgba: Uint8Array, width: number, height: number, header: ImageHeader): RawImage {
  const n = width * height;
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) {
      opaque = false;
      break;
    }
  }
  if (!opaque) return { data: rgba, width, height, channels: 4 };
  const channels: Channels = header.grey ? 1 : 3;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) out[i * channels + c] = rgba[i * 4 + c]!;
  }
  return { data: out, width, height, channels };
}

/**
 * Converts a `[H, W, C]` tensor (C = 1, 3 or 4) to 8 bits the way transformers converts arrays before PIL:
 * integer-valued data in [0, 255] is taken as is; otherwise data in [0, 1] is multiplied by 255 (float64, then
 * float32) and truncated. (transformers then divides by 255 again after resizing, which double-rescales such
 * inputs; that quirk is not reproduced.) The tensor is not disposed.
 */
export async function rawImageFromTensor(tensor: tf.Tensor3D, maxPixels = DEFAULT_MAX_PIXELS): Promise<RawImage> {
  if (!(tensor instanceof tf.Tensor)) throw new InvalidArgumentError(`tensor: expected a tf.Tensor, got ${typeof tensor}`);
  if (tensor.rank !== 3 || ![1, 3, 4].includes(tensor.shape[2]!)) {
    throw new ShapeError('tensor', '[H, W, C] with C in {1, 3, 4}', tensor.shape);
  }
  const [height, width, channels] = tensor.shape as [number, number, Channels];
  checkPixelLimit(width, height, maxPixels, `tensor ${formatShape(tensor.shape)}`);
  const values = await tensor.data();
  const data = new Uint8Array(values.length);
  let integral = true;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (!Number.isFinite(v)) throw new InvalidArgumentError(`tensor: contains a non-finite value (${v}) at index ${i}`);
    // numpy.allclose(image, image.astype(int)) with its default tolerances.
    if (Math.abs(v - Math.trunc(v)) > 1e-8 + 1e-5 * Math.abs(Math.trunc(v))) integral = false;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const unit = min >= 0 && max <= 1;
  if (integral && min >= 0 && max <= 255) {
    for (let i = 0; i < values.length; i++) data[i] = Math.trunc(Number(values[i]));
  } else if (unit) {
    for (let i = 0; i < values.length; i++) data[i] = Math.trunc(Math.fround(Number(values[i]) * 255));
  } else {
    throw new InvalidArgumentError(
      `tensor: values must be integers in [0, 255] or floats in [0, 1], got the range [${min}, ${max}]`,
    );
  }
  return { data, width, height, channels };
}

/** Encodes an image as PNG (8-bit grey, RGB or RGBA as the image has). */
export async function encodePng(image: RawImage): Promise<Uint8Array> {
  const img = validateRawImage(image);
  const rgba = toRGBA(img);
  // jimp wraps `data.buffer` whole, so hand it an array that owns an exactly sized buffer.
  const jimp = Jimp.fromBitmap({ data: new Uint8Array(rgba.data), width: img.width, height: img.height });
  const colorType = img.channels === 1 ? 0 : img.channels === 3 ? 2 : 6;
  const buffer = await jimp.getBuffer('image/png', { colorType, inputHasAlpha: true });
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Writes an image as a PNG file atomically (temporary file, then rename). */
export async function savePng(path: string, image: RawImage): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError(`path: expected a file path, got ${typeof path}`);
  const bytes = await encodePng(image);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileNotFoundError(dirname(path), 'output directory');
    throw new FileFormatError(path, `cannot write PNG: ${(err as Error).message}`, { cause: err });
  }
}

const LEGEND_FONTS: readonly [number, string][] = [
  [64, SANS_64_BLACK],
  [32, SANS_32_BLACK],
  [16, SANS_16_BLACK],
  [12, SANS_12_BLACK],
];

/**
 * Loads the Open Sans bitmap font jimp ships (Apache-2.0) for overlay legends, sized for an image of the given
 * height: about 1/30 of it, between 12 and 64 px.
 */
export async function loadLegendFont(imageHeight: number): Promise<LegendFont> {
  if (typeof imageHeight !== 'number' || !(imageHeight > 0)) {
    throw new InvalidArgumentError(`imageHeight: expected a positive number, got ${String(imageHeight)}`);
  }
  const wanted = imageHeight / 30;
  const [, file] = LEGEND_FONTS.find(([size]) => size <= wanted) ?? LEGEND_FONTS[LEGEND_FONTS.length - 1]!;
  return loadFont(file);
}
