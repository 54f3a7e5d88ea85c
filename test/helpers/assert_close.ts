/** Numeric comparison helpers that report where and by how much two arrays differ. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

type Numbers = tf.Tensor | ArrayLike<number>;

function values(x: Numbers): ArrayLike<number> {
  return x instanceof tf.Tensor ? (x.dataSync() as Float32Array) : x;
}

function shapeOf(x: Numbers): readonly number[] | undefined {
  return x instanceof tf.Tensor ? x.shape : undefined;
}

/** max |a - b| (Infinity when lengths differ; NaN positions count as Infinity unless both are NaN). */
export function maxAbsDiff(actual: Numbers, expected: Numbers): number {
  const a = values(actual);
  const b = values(expected);
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    const d = Math.abs(x - y);
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

export function maxAbs(x: Numbers): number {
  const v = values(x);
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

export interface CloseOptions {
  /** Absolute tolerance (default 1e-4). */
  atol?: number;
  /** Relative tolerance, scaled by each expected element's magnitude (default 0). */
  rtol?: number;
  /** Expected shape, when `expected` is not a tensor. */
  shape?: readonly number[];
}

/**
 * Asserts |actual - expected| <= atol + rtol*|expected| elementwise and equal shapes (when known).
 * Returns the max absolute difference so callers can report it.
 */
export function assertClose(actual: Numbers, expected: Numbers, name: string, options: CloseOptions = {}): number {
  const atol = options.atol ?? 1e-4;
  const rtol = options.rtol ?? 0;
  const wantShape = shapeOf(expected) ?? options.shape;
  const gotShape = shapeOf(actual);
  if (wantShape !== undefined && gotShape !== undefined) {
    assert.deepEqual([...gotShape], [...wantShape], `${name}: shape`);
  }
  const a = values(actual);
  const b = values(expected);
  assert.equal(a.length, b.length, `${name}: element count`);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    const excess = Number.isNaN(d) ? Infinity : d - (atol + rtol * Math.abs(b[i]!));
    if (excess > 0 && (worstAt === -1 || excess > worst)) {
      worst = excess;
      worstAt = i;
    }
  }
  if (worstAt !== -1) {
    assert.fail(`${name}: element ${worstAt} is ${a[worstAt]}, expected ${b[worstAt]} (|diff| ${Math.abs(a[worstAt]! - b[worstAt]!)} > ${atol} + ${rtol}*|expected|)`);
  }
  return maxAbsDiff(a, b);
}
