/** Running tests on a chosen tfjs backend. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export const TEST_BACKENDS = ['wasm', 'cpu'] as const;
export type TestBackend = (typeof TEST_BACKENDS)[number];

/** Switches the global backend (tfjs has one) and waits until it is ready. */
export async function useBackend(name: string): Promise<void> {
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`backend '${name}' failed to initialise`);
  }
  await tf.ready();
}

/** Runs `fn` on `name`, restoring the previous backend afterwards. */
export async function withBackend<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await useBackend(name);
  try {
    return await fn();
  } finally {
    if (previous !== undefined && previous !== name) await useBackend(previous);
  }
}
