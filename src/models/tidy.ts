import * as tf from '@tensorflow/tfjs';
import { ForwardContext, type ForwardContextOptions } from '../layers/context.js';

/**
 * `tf.tidy` for functions returning output objects: every tensor reachable from the result survives, all other
 * tensors created inside are disposed. (`tf.tidy`'s typing wants an index signature our interfaces lack.)
 */
export function tidyOutput<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

/** Runs a public forward in a fresh context and tidy scope, adding `captures` when any were requested. */
export function runForward<T extends object>(options: ForwardContextOptions, body: (ctx: ForwardContext) => T): T & { captures?: Record<string, tf.Tensor> } {
  const ctx = new ForwardContext(options);
  const out = tidyOutput(() => body(ctx));
  return ctx.capturing ? { ...out, captures: ctx.captures } : out;
}

/** Disposes every tensor in an output object (nested fields, arrays, captures). */
export function disposeOutput(output: object): void {
  tf.dispose(output as unknown as tf.TensorContainer);
}
