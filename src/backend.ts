/**
 * tfjs backend selection for Node. `tensorflow` (native, from the optional `@tensorflow/tfjs-node-gpu` or
 * `@tensorflow/tfjs-node` packages) is the fastest; `wasm` runs everywhere, about 60 times faster than `cpu`,
 * the pure-JS fallback.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, InvalidArgumentError } from './errors.js';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** The environment variable that picks the backend when no name is passed. */
export const BACKEND_ENV = 'CLIPSEG_BACKEND';

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const NATIVE_HINT =
  'install the native backend with `npm install @tensorflow/tfjs-node` (or `@tensorflow/tfjs-node-gpu` for CUDA GPUs), or choose --backend wasm';

/** Imports the first native package that loads; returns its name, or the errors of each attempt. */
async function importNative(): Promise<{ name?: string; errors: string[] }> {
  const errors: string[] = [];
  for (const name of NATIVE_PACKAGES) {
    try {
      // A variable specifier: the packages are optional and absent from the type graph.
      const specifier: string = name;
      await import(specifier);
      return { name, errors };
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { errors };
}

async function activate(name: string): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function useTensorflow(): Promise<void> {
  if (tf.findBackendFactory('tensorflow') === null) {
    const { name, errors } = await importNative();
    if (name === undefined) throw new BackendError(`the 'tensorflow' backend is not available (${errors.join('; ')}): ${NATIVE_HINT}`);
  }
  if (!(await activate('tensorflow'))) throw new BackendError(`the 'tensorflow' backend failed to initialise: ${NATIVE_HINT}`);
}

async function useWasm(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new BackendError(`the 'wasm' backend is not available (${(err as Error).message}): reinstall @tensorflow/tfjs-backend-wasm`, { cause: err });
  }
  if (!(await activate('wasm'))) throw new BackendError("the 'wasm' backend failed to initialise (its .wasm binaries could not be loaded)");
}

async function useCpu(): Promise<void> {
  if (!(await activate('cpu'))) throw new BackendError("the 'cpu' backend failed to initialise");
}

/**
 * Activates a backend and returns its name. `name` defaults to `$CLIPSEG_BACKEND`, then `auto`: native TensorFlow
 * when one of its packages can be imported, else wasm, else cpu.
 */
export async function selectBackend(name?: BackendName | string): Promise<string> {
  const fromEnv = process.env[BACKEND_ENV];
  const requested = name ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'auto');
  const source = name !== undefined ? 'backend' : BACKEND_ENV;
  if (!(BACKEND_NAMES as readonly string[]).includes(requested)) {
    throw new InvalidArgumentError(`${source}: expected one of ${BACKEND_NAMES.join(', ')}, got '${requested}'`);
  }
  switch (requested as BackendName) {
    case 'tensorflow':
      await useTensorflow();
      break;
    case 'wasm':
      await useWasm();
      break;
    case 'cpu':
      await useCpu();
      break;
    case 'auto':
      if (tf.findBackendFactory('tensorflow') !== null || (await importNative()).name !== undefined) {
        if (await activate('tensorflow')) break;
      }
      try {
        await useWasm();
      } catch {
        await useCpu();
      }
      break;
  }
  return tf.getBackend();
}

/** The active backend's name (tfjs picks one lazily when none was selected). */
export function currentBackend(): string {
  return tf.getBackend();
}
