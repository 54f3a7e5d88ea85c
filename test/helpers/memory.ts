/** tfjs memory-discipline assertions. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

/**
 * Runs `fn`, then disposes what it returned (any tensor container) and asserts the live tensor count is back
 * where it started: everything `fn` created and did not return was released.
 */
export function assertNoLeak<T>(fn: () => T, name = 'call'): T {
  const before = tf.memory().numTensors;
  const result = fn();
  const returned = countTensors(result);
  const after = tf.memory().numTensors;
  assert.equal(after - before, returned, `${name}: ${after - before} new tensors are live, ${returned} returned`);
  return result;
}

/** Asserts that `fn` (sync or async) leaves exactly `delta` more live tensors. */
export async function assertTensorDelta(fn: () => unknown, delta: number, name = 'call'): Promise<void> {
  const before = tf.memory().numTensors;
  await fn();
  assert.equal(tf.memory().numTensors - before, delta, `${name}: live tensor count changed`);
}

/** Distinct live tensors reachable from a container (objects, arrays, records). */
export function countTensors(container: unknown): number {
  const seen = new Set<number>();
  const visit = (x: unknown): void => {
    if (x instanceof tf.Tensor) {
      if (!x.isDisposed) seen.add(x.id);
    } else if (Array.isArray(x)) {
      x.forEach(visit);
    } else if (x !== null && typeof x === 'object' && !ArrayBuffer.isView(x)) {
      Object.values(x).forEach(visit);
    }
  };
  visit(container);
  return seen.size;
}
