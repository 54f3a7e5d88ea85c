/**
 * The one place where Hugging Face (PyTorch) weight layouts and this library's tfjs layouts meet.
 *
 * | kind             | HF layout        | tfjs layout       | used for                                         |
 * |------------------|------------------|-------------------|--------------------------------------------------|
 * | linear           | [out, in]        | [in, out]         | every nn.Linear weight (matMul(x, W), no transposeB) |
 * | conv2d           | [out, in, kh, kw]| [kh, kw, in, out] | patch embedding, refined head conv3x3            |
 * | conv_transpose2d | [in, out, kh, kw]| [in, kh, kw, out] | decoder transposed convolutions (matMul [C, k*k*O]) |
 * | identity         | unchanged        | unchanged         | biases, norms, embeddings, class_embedding, logit_scale |
 *
 * Files written by this library carry `{"format": "clipseg-tfjs", "layout": "tfjs"}` in their safetensors
 * metadata; any other file (`"format": "pt"`, or no `layout` key) is HF layout.
 */
import { ShapeError } from '../errors.js';

export type LayoutKind = 'identity' | 'linear' | 'conv2d' | 'conv_transpose2d';
export type WeightLayout = 'hf' | 'tfjs';

/** Key patterns, first match wins; keys matching none are `identity`. */
export const LAYOUT_TABLE: readonly { pattern: RegExp; kind: LayoutKind }[] = [
  { pattern: /(^|\.)self_attn\.(q_proj|k_proj|v_proj|out_proj)\.weight$/, kind: 'linear' },
  { pattern: /(^|\.)mlp\.fc[12]\.weight$/, kind: 'linear' },
  { pattern: /(^|\.)(visual_projection|text_projection)\.weight$/, kind: 'linear' },
  { pattern: /(^|\.)decoder\.(film_mul|film_add|reduces\.\d+)\.weight$/, kind: 'linear' },
  { pattern: /(^|\.)embeddings\.patch_embedding\.weight$/, kind: 'conv2d' },
  { pattern: /(^|\.)decoder\.transposed_convolution\.0\.weight$/, kind: 'conv2d' },
  { pattern: /(^|\.)decoder\.transposed_convolution(\.[24])?\.weight$/, kind: 'conv_transpose2d' },
];

export const SAFETENSORS_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: 'clipseg-tfjs', layout: 'tfjs' });

/** The layout a safetensors file's metadata declares. */
export function layoutOfMetadata(metadata: Readonly<Record<string, string>>): WeightLayout {
  return metadata.layout === 'tfjs' ? 'tfjs' : 'hf';
}

export function layoutKindOf(key: string): LayoutKind {
  for (const { pattern, kind } of LAYOUT_TABLE) if (pattern.test(key)) return kind;
  return 'identity';
}

const RANK: Record<LayoutKind, number | undefined> = { identity: undefined, linear: 2, conv2d: 4, conv_transpose2d: 4 };

/** Axis permutations: output axis i takes input axis perm[i]. */
const HF_TO_TFJS: Record<LayoutKind, readonly number[] | undefined> = {
  identity: undefined,
  linear: [1, 0],
  conv2d: [2, 3, 1, 0],
  conv_transpose2d: [0, 2, 3, 1],
};
const TFJS_TO_HF: Record<LayoutKind, readonly number[] | undefined> = {
  identity: undefined,
  linear: [1, 0],
  conv2d: [3, 2, 0, 1],
  conv_transpose2d: [0, 3, 1, 2],
};

function checkedPerm(key: string, kind: LayoutKind, shape: readonly number[], table: typeof HF_TO_TFJS, side: string) {
  const rank = RANK[kind];
  if (rank !== undefined && shape.length !== rank) {
    throw new ShapeError(key, `a rank-${rank} ${kind} weight in ${side} layout`, shape);
  }
  return table[kind];
}

export function tfjsShapeOf(key: string, hfShape: readonly number[]): number[] {
  const perm = checkedPerm(key, layoutKindOf(key), hfShape, HF_TO_TFJS, 'HF');
  return perm === undefined ? [...hfShape] : perm.map((axis) => hfShape[axis]!);
}

export function hfShapeOf(key: string, tfjsShape: readonly number[]): number[] {
  const perm = checkedPerm(key, layoutKindOf(key), tfjsShape, TFJS_TO_HF, 'tfjs');
  return perm === undefined ? [...tfjsShape] : perm.map((axis) => tfjsShape[axis]!);
}

export interface LaidOut {
  shape: number[];
  data: Float32Array;
}

/**
 * HF layout -> tfjs layout. Identity kinds return `data` itself (no copy). Other kinds write into `out` when it is
 * given (a buffer of at least the weight's size, reused across weights; the result is a view of it), else into a
 * fresh array.
 */
export function hfToTfjs(key: string, hfShape: readonly number[], data: Float32Array, out?: Float32Array): LaidOut {
  const perm = checkedPerm(key, layoutKindOf(key), hfShape, HF_TO_TFJS, 'HF');
  return perm === undefined ? { shape: [...hfShape], data } : permute(key, hfShape, data, perm, out);
}

/** tfjs layout -> HF layout. Identity kinds return `data` itself (no copy); `out` as for `hfToTfjs`. */
export function tfjsToHf(key: string, tfjsShape: readonly number[], data: Float32Array, out?: Float32Array): LaidOut {
  const perm = checkedPerm(key, layoutKindOf(key), tfjsShape, TFJS_TO_HF, 'tfjs');
  return perm === undefined ? { shape: [...tfjsShape], data } : permute(key, tfjsShape, data, perm, out);
}

/** Converts between layouts; `from === to` is the identity. `out` as for `hfToTfjs`. */
export function convertLayout(key: string, shape: readonly number[], data: Float32Array, from: WeightLayout, to: WeightLayout, out?: Float32Array): LaidOut {
  if (from === to) return { shape: [...shape], data };
  return from === 'hf' ? hfToTfjs(key, shape, data, out) : tfjsToHf(key, shape, data, out);
}

/** `transposeMatrix` moves blocks of this many input rows by this many columns. */
export const TRANSPOSE_BLOCK = Object.freeze({ rows: 8, cols: 128 } as const);

/**
 * `[rows, cols]` -> `[cols, rows]`, row-major, into `out` (or a fresh array). Eight input rows at a time, so that
 * each column of the block becomes eight consecutive output values (half a cache line) read from eight sequential
 * streams; the columns go in blocks so those eight rows stay cached. An element-by-element transpose, which writes
 * one value per output row touched, is about three times slower on the Linear weights, and square 32x32 tiles
 * about twice.
 */
export function transposeMatrix(data: Float32Array, rows: number, cols: number, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  if (data.length !== rows * cols || out.length !== rows * cols) {
    throw new ShapeError('transposeMatrix', `input and output of ${rows * cols} values ([${rows}, ${cols}])`, `${data.length} and ${out.length} values`);
  }
  const fullRows = rows - (rows % TRANSPOSE_BLOCK.rows);
  for (let c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK.cols) {
    const c1 = Math.min(c0 + TRANSPOSE_BLOCK.cols, cols);
    // The block height is unrolled: i0..i7 are the eight rows.
    for (let r = 0; r < fullRows; r += TRANSPOSE_BLOCK.rows) {
      const i0 = r * cols;
      const i1 = i0 + cols;
      const i2 = i1 + cols;
      const i3 = i2 + cols;
      const i4 = i3 + cols;
      const i5 = i4 + cols;
      const i6 = i5 + cols;
      const i7 = i6 + cols;
      for (let c = c0; c < c1; c++) {
        const o = c * rows + r;
        out[o] = data[i0 + c]!;
        out[o + 1] = data[i1 + c]!;
        out[o + 2] = data[i2 + c]!;
        out[o + 3] = data[i3 + c]!;
        out[o + 4] = data[i4 + c]!;
        out[o + 5] = data[i5 + c]!;
        out[o + 6] = data[i6 + c]!;
        out[o + 7] = data[i7 + c]!;
      }
    }
    for (let r = fullRows; r < rows; r++) {
      const i = r * cols;
      for (let c = c0; c < c1; c++) out[c * rows + r] = data[i + c]!;
    }
  }
  return out;
}

/** A row-major transpose of up to 4 axes on the host, into `into` when given. */
function permute(key: string, shape: readonly number[], data: Float32Array, perm: readonly number[], into?: Float32Array): LaidOut {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new ShapeError(key, `${size} values for shape [${shape.join(', ')}]`, `${data.length} values`);
  if (into !== undefined && into.length < size) throw new ShapeError(`${key} (output buffer)`, `at least ${size} values`, `${into.length} values`);
  const out = into === undefined ? new Float32Array(size) : into.subarray(0, size);
  const rank = shape.length;
  const outShape = perm.map((axis) => shape[axis]!);
  if (rank === 2 && perm[0] === 1) return { shape: outShape, data: transposeMatrix(data, shape[0]!, shape[1]!, out) };
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  // Pad to 4 axes so one loop nest serves linear (2-D) and conv (4-D) weights.
  const dims = [1, 1, 1, 1];
  const strides = [0, 0, 0, 0];
  for (let i = 0; i < rank; i++) {
    dims[4 - rank + i] = outShape[i]!;
    strides[4 - rank + i] = inStrides[perm[i]!]!;
  }
  const [d0, d1, d2, d3] = dims as [number, number, number, number];
  const [s0, s1, s2, s3] = strides as [number, number, number, number];
  let o = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++) out[o++] = data[base + d * s3]!;
      }
    }
  }
  return { shape: outShape, data: out };
}
