/**
 * PyTorch's `interpolate(mode='bicubic', align_corners=False)` as two small matrices: out = Wy . G . Wx^T per
 * channel. tfjs has no bicubic resize, and written as matMuls the resize stays differentiable.
 *
 * For output index o the source coordinate is (o + 0.5) * in/out - 0.5 (not clamped), f = floor, t = frac; the
 * taps f-1..f+2 are clamped to the edge and weighted by Keys' cubic with A = -0.75, in float32 as PyTorch does.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';

const A = -0.75;
const f32 = Math.fround;

/** Distance <= 1. */
function cubicNear(x: number): number {
  return f32(f32(f32(f32(f32((A + 2) * x) - (A + 3)) * x) * x) + 1);
}

/** 1 < distance < 2. */
function cubicFar(x: number): number {
  return f32(f32(f32(f32(f32(f32(A * x) - 5 * A) * x) + 8 * A) * x) - 4 * A);
}

const matrices = new Map<string, Float32Array>();

/** The [outSize, inSize] interpolation matrix (row-major). Cached; do not modify. */
export function bicubicMatrix(inSize: number, outSize: number): Float32Array {
  for (const [name, v] of [['inSize', inSize], ['outSize', outSize]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`bicubicMatrix: ${name} must be a positive integer, got ${v}`);
  }
  const key = `${inSize}>${outSize}`;
  let m = matrices.get(key);
  if (m !== undefined) return m;
  m = new Float32Array(outSize * inSize);
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    const source = f32(f32(scale * f32(o + 0.5)) - 0.5);
    const floor = Math.floor(source);
    const t = f32(source - floor);
    const weights = [cubicFar(f32(t + 1)), cubicNear(t), cubicNear(f32(1 - t)), cubicFar(f32(f32(1 - t) + 1))];
    for (let tap = 0; tap < 4; tap++) {
      const index = Math.min(Math.max(floor - 1 + tap, 0), inSize - 1);
      m[o * inSize + index] = f32(m[o * inSize + index]! + weights[tap]!);
    }
  }
  matrices.set(key, m);
  return m;
}

/** grid: [H, W, C] -> [outH, outW, C]; columns are interpolated first, then rows, as PyTorch's CPU kernel does. */
export function resizeBicubic(grid: tf.Tensor, outH: number, outW: number): tf.Tensor {
  const [h, w, c] = grid.shape as [number, number, number];
  return tf.tidy(() => {
    const wx = tf.tensor2d(bicubicMatrix(w, outW), [outW, w]);
    const wy = tf.tensor2d(bicubicMatrix(h, outH), [outH, h]);
    // [H, W, C] -> [W, H*C]
    const byColumn = tf.transpose(grid, [1, 0, 2]).reshape([w, h * c]) as tf.Tensor2D;
    // [outW, H*C] -> [outW, H, C] -> [H, outW, C] -> [H, outW*C]
    const columns = tf.transpose(tf.matMul(wx, byColumn).reshape([outW, h, c]), [1, 0, 2]).reshape([h, outW * c]) as tf.Tensor2D;
    // [outH, outW*C] -> [outH, outW, C]
    return tf.matMul(wy, columns).reshape([outH, outW, c]);
  });
}
