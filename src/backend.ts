/**
 * tfjs backend selection for Node. `tensorflow` (native, from the optional `@tensorflow/tfjs-node-gpu` or
 * `@tensorflow/tfjs-node` packages) is the fastest; `wasm` runs everywhere, about 60 times faster than `cpu`,
 * the pure-JS fallback. `wasm` runs its single-threaded SIMD build unless `threads` (or `$CLIPSEG_WASM_THREADS`)
 * asks for more than one thread, which starts the threaded SIMD build (`wasm_threads.ts`). Either build is chosen
 * once per process, when the wasm backend is first initialised.
 */
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ENV, BACKEND_NAMES, type BackendName, WASM_THREADS_ENV, checkThreads } from './backend_options.js';
import { BackendError, InvalidArgumentError } from './errors.js';
import { count } from './text.js';

export { BACKEND_ENV, BACKEND_NAMES, type BackendName, MAX_WASM_THREADS, WASM_THREADS_ENV, checkThreads } from './backend_options.js';

export interface BackendOptions {
  /**
   * Threads of the wasm backend (default: `$CLIPSEG_WASM_THREADS`, else 1). 1 is the single-threaded SIMD build;
   * 2 to 8 start the threaded SIMD build, whose idle workers do not keep the process alive. Other backends
   * ignore the variable; passing this option with an explicit non-wasm backend is an error.
   */
  threads?: number;
}

/** The wasm build this module started: the threads asked for and those XNNPACK uses. */
let wasmStarted: { requested: number; actual: number } | undefined;

/** The threads asked for: the option, else the environment variable, else undefined (no preference). */
function requestedThreads(options: BackendOptions): number | undefined {
  if (options.threads !== undefined) return checkThreads(options.threads, 'threads');
  const fromEnv = process.env[WASM_THREADS_ENV];
  if (fromEnv === undefined || fromEnv.trim() === '') return undefined;
  const n = Number(fromEnv);
  return checkThreads(Number.isNaN(n) ? fromEnv : n, WASM_THREADS_ENV);
}

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

/** Imports (and so registers) the wasm backend; a BackendError when the package cannot load. */
export async function importWasmBackend(): Promise<typeof import('@tensorflow/tfjs-backend-wasm')> {
  try {
    return await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new BackendError(`the 'wasm' backend is not available (${(err as Error).message}): reinstall @tensorflow/tfjs-backend-wasm`, { cause: err });
  }
}

async function useWasm(threads: number | undefined): Promise<void> {
  if ('wasm' in tf.engine().registry) {
    const running = wasmStarted?.requested ?? 1;
    if (threads !== undefined && threads !== running) {
      throw new BackendError(
        `threads: the wasm backend already runs with ${count(running, 'thread')} in this process, asked for ${threads}; its build is chosen once per process, before its first use`,
      );
    }
  } else if (threads !== undefined && threads > 1) {
    const { startThreadedWasm } = await import('./wasm_threads.js');
    wasmStarted = { requested: threads, actual: await startThreadedWasm(threads) };
    return;
  }
  await importWasmBackend();
  if (!(await activate('wasm'))) throw new BackendError("the 'wasm' backend failed to initialise (its .wasm binaries could not be loaded)");
}

async function useCpu(): Promise<void> {
  if (!(await activate('cpu'))) throw new BackendError("the 'cpu' backend failed to initialise");
}

/**
 * Activates a backend and returns its name. `name` defaults to `$CLIPSEG_BACKEND`, then `auto`: native TensorFlow
 * when one of its packages can be imported, else wasm, else cpu (but not cpu when more than one wasm thread was
 * asked for and the threaded build failed: that is a BackendError).
 */
export async function selectBackend(name?: BackendName | string, options: BackendOptions = {}): Promise<string> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`options: expected an object, got ${String(options)}`);
  const fromEnv = process.env[BACKEND_ENV];
  const requested = name ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'auto');
  const source = name !== undefined ? 'backend' : BACKEND_ENV;
  if (!(BACKEND_NAMES as readonly string[]).includes(requested)) {
    throw new InvalidArgumentError(`${source}: expected one of ${BACKEND_NAMES.join(', ')}, got '${requested}'`);
  }
  const threads = requestedThreads(options);
  if (options.threads !== undefined && (requested === 'tensorflow' || requested === 'cpu')) {
    throw new InvalidArgumentError(`threads: applies to the wasm backend only, got backend '${requested}'`);
  }
  switch (requested as BackendName) {
    case 'tensorflow':
      await useTensorflow();
      break;
    case 'wasm':
      await useWasm(threads);
      break;
    case 'cpu':
      await useCpu();
      break;
    case 'auto':
      if (tf.findBackendFactory('tensorflow') !== null || (await importNative()).name !== undefined) {
        if (await activate('tensorflow')) break;
      }
      try {
        await useWasm(threads);
      } catch (err) {
        if (threads !== undefined && threads > 1) throw err;
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

/**
 * Threads the wasm backend's matrix products use: 1 on the single-threaded build, XNNPACK's pool on the threaded
 * build; undefined while the wasm backend has not started.
 */
export function wasmThreads(): number | undefined {
  if (!('wasm' in tf.engine().registry)) return undefined;
  return wasmStarted?.actual ?? 1;
}
