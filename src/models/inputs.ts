/**
 * Validation of model inputs before any tensor work, so that bad input fails with a `ClipSegError` naming the
 * argument and the expected and actual shape rather than a tfjs internal message.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegTextConfig, CLIPSegVisionConfig } from '../config/index.js';
import { InvalidArgumentError, ShapeError, formatShape } from '../errors.js';

/** Token ids as a [batch, length] tensor (int32, or float32 holding integers) or nested arrays. */
export type TokenIds = tf.Tensor | readonly (readonly number[])[];

/** Token ids and mask read to the host, where the pooled (EOS) position is chosen. */
export interface TokenBatch {
  ids: Int32Array;
  /** 1 where a token may be attended to; absent means all ones. */
  mask?: Float32Array;
  batch: number;
  length: number;
}

function describe(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape ${formatShape(value.shape)}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return value === null ? 'null' : typeof value;
}

function readMatrix(value: unknown, name: string): { data: Float32Array | Int32Array; rows: number; cols: number } {
  if (value instanceof tf.Tensor) {
    if (value.rank !== 2) throw new ShapeError(name, '[batch, length]', value.shape);
    if (value.dtype !== 'int32' && value.dtype !== 'float32' && value.dtype !== 'bool') {
      throw new InvalidArgumentError(`${name}: expected an int32 or float32 tensor, got ${value.dtype}`);
    }
    const [rows, cols] = value.shape as [number, number];
    return { data: value.dataSync() as Float32Array | Int32Array, rows, cols };
  }
  if (Array.isArray(value)) {
    const rows = value.length;
    const cols = rows > 0 && Array.isArray(value[0]) ? (value[0] as unknown[]).length : 0;
    const data = new Float32Array(rows * cols);
    value.forEach((row: unknown, r) => {
      if (!Array.isArray(row) || row.length !== cols) {
        throw new ShapeError(name, `${rows} rows of ${cols} numbers (a rectangular [batch, length] array)`, `row ${r}: ${describe(row)}`);
      }
      row.forEach((v: unknown, c) => {
        if (typeof v !== 'number') throw new InvalidArgumentError(`${name}[${r}][${c}]: expected a number, got ${describe(v)}`);
        data[r * cols + c] = v;
      });
    });
    return { data, rows, cols };
  }
  throw new InvalidArgumentError(`${name}: expected a [batch, length] tensor or array of arrays, got ${describe(value)}`);
}

/** Reads and checks `inputIds` (and `attentionMask`) against the text config. */
export function readTokens(inputIds: unknown, attentionMask: unknown, text: CLIPSegTextConfig): TokenBatch {
  const { data, rows, cols } = readMatrix(inputIds, 'inputIds');
  const limit = text.max_position_embeddings;
  if (rows === 0 || cols === 0 || cols > limit) {
    throw new ShapeError('inputIds', `[batch, length] with batch >= 1 and 1 <= length <= max_position_embeddings (${limit})`, [rows, cols]);
  }
  const ids = new Int32Array(rows * cols);
  for (let i = 0; i < ids.length; i++) {
    const v = data[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= text.vocab_size) {
      const r = Math.floor(i / cols);
      throw new InvalidArgumentError(`inputIds[${r}][${i - r * cols}]: expected an integer token id in 0..${text.vocab_size - 1}, got ${v}`);
    }
    ids[i] = v;
  }
  if (attentionMask === undefined || attentionMask === null) return { ids, batch: rows, length: cols };
  const mask = readMatrix(attentionMask, 'attentionMask');
  if (mask.rows !== rows || mask.cols !== cols) {
    throw new ShapeError('attentionMask', `${formatShape([rows, cols])} (the shape of inputIds)`, [mask.rows, mask.cols]);
  }
  return { ids, mask: Float32Array.from(mask.data), batch: rows, length: cols };
}

/**
 * Checks `pixelValues`-like input: float32 [batch, channels, H, W] with H and W positive multiples of the patch
 * size, and H = W when `square` (the decoder reshapes tokens to a square grid).
 */
export function checkPixels(value: unknown, name: string, vision: CLIPSegVisionConfig, square: boolean): tf.Tensor4D {
  const c = vision.num_channels;
  const p = vision.patch_size;
  const expected = `[batch, ${c}, H, W] with H${square ? ' = W' : ' and W'} positive multiples of the patch size ${p}`;
  if (!(value instanceof tf.Tensor)) throw new InvalidArgumentError(`${name}: expected a float32 tensor ${expected}, got ${describe(value)}`);
  if (value.dtype !== 'float32') throw new InvalidArgumentError(`${name}: expected a float32 tensor, got ${value.dtype}`);
  const [b, channels, h, w] = value.shape;
  const ok =
    value.rank === 4 && b! > 0 && channels === c && h! > 0 && w! > 0 && h! % p === 0 && w! % p === 0 && (!square || h === w);
  if (!ok) throw new ShapeError(name, expected, value.shape);
  return value as tf.Tensor4D;
}

/** Checks a float32 [batch, dim] tensor. */
export function checkMatrix(value: unknown, name: string, dim: number, what: string): tf.Tensor2D {
  if (!(value instanceof tf.Tensor)) throw new InvalidArgumentError(`${name}: expected a float32 tensor [batch, ${dim}], got ${describe(value)}`);
  if (value.dtype !== 'float32') throw new InvalidArgumentError(`${name}: expected a float32 tensor, got ${value.dtype}`);
  if (value.rank !== 2 || value.shape[0] === 0 || value.shape[1] !== dim) {
    throw new ShapeError(name, `[batch, ${dim}] (${what})`, value.shape);
  }
  return value as tf.Tensor2D;
}

/** Checks that a tensor has exactly `shape`. */
export function checkShape(value: unknown, name: string, shape: readonly number[], what: string): tf.Tensor {
  if (!(value instanceof tf.Tensor)) throw new InvalidArgumentError(`${name}: expected a float32 tensor ${formatShape(shape)}, got ${describe(value)}`);
  if (value.dtype !== 'float32') throw new InvalidArgumentError(`${name}: expected a float32 tensor, got ${value.dtype}`);
  if (!tf.util.arraysEqual(value.shape, [...shape])) throw new ShapeError(name, `${formatShape(shape)} (${what})`, value.shape);
  return value;
}

/**
 * The batch a prompt batch of `prompts` runs at against `images` images: equal counts pair up, and one image
 * is shared by all prompts (its vision pass runs once).
 */
export function pairedBatch(images: number, prompts: number, promptName: string): number {
  if (images === prompts || images === 1) return prompts;
  throw new ShapeError(promptName, `batch ${images} (one prompt per image) or any batch with a single image`, `batch ${prompts}`);
}
