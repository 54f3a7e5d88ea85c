/** Helpers for disposing what the model returns. */
import * as tf from '@tensorflow/tfjs';

/** Every tensor reachable from a value (nested objects and arrays), each once, for disposal. */
export function tensorsIn(value: unknown, into: Set<tf.Tensor> = new Set()): tf.Tensor[] {
  if (value instanceof tf.Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) tensorsIn(v, into);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) tensorsIn(v, into);
  return [...into];
}
