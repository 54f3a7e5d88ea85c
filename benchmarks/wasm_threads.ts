/**
 * Runs tfjs-backend-wasm 4.22's threaded SIMD build under Node. The package disables it in Node
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is false when `IS_NODE`), and three things stand in the way once that flag is
 * forced on:
 *
 * 1. Emscripten starts its pthread workers from a `blob:` URL of the worker script, which Node's `Worker` cannot
 *    load: while the backend initialises, `URL.createObjectURL` here writes the blob's text to a temporary `.cjs`
 *    file and returns its path instead.
 * 2. Each worker then loads the main script from a second Blob that it turns into a `blob:` URL itself, in the
 *    worker, and that Blob holds a bundler-renamed copy of the factory (`require$$0` is undefined there): the
 *    worker file gets a one-line prologue that points its `URL.createObjectURL` at the package's own
 *    `tfjs-backend-wasm-threaded-simd.js` instead.
 * 3. The C++ side caps the XNNPACK pool at `emscripten_num_logical_cores() / 2` (it assumes two hyperthreads per
 *    core), which is 1 on a 2-core machine: `os.cpus()` reports twice the cores while the module is instantiated.
 *
 * The eight workers of Emscripten's pre-allocated pool are created and loaded during initialisation, so the
 * patches are undone (and the temporary files removed) as soon as the backend is ready.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { BackendError, InvalidArgumentError } from '../src/errors.js';

/** XNNPACK's pool in tfjs 4.22 never exceeds the 8 pre-created workers. */
export const MAX_WASM_THREADS = 8;

export interface ThreadedWasm {
  /** Threads XNNPACK actually uses, as the backend reports it. */
  threads: number;
}

/**
 * Initialises the `wasm` backend from the threaded SIMD binary with `threads` threads and makes it the active
 * backend. Must run before anything else initialises the wasm backend in this process. The workers keep the
 * process alive: end it with `process.exit`.
 */
export async function initThreadedWasm(threads: number): Promise<ThreadedWasm> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new InvalidArgumentError(`threads: expected an integer in 1..${MAX_WASM_THREADS}, got ${threads}`);
  }
  const require = createRequire(import.meta.url);
  const mainScript = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tfjs-wasm-threads-'));

  const NativeBlob = globalThis.Blob;
  const nativeCreateObjectURL = URL.createObjectURL;
  const nativeCpus = os.cpus;
  const texts = new WeakMap<object, string>();
  class TextBlob extends NativeBlob {
    constructor(parts?: ConstructorParameters<typeof NativeBlob>[0], options?: ConstructorParameters<typeof NativeBlob>[1]) {
      super(parts ?? [], options);
      if (parts !== undefined && parts.every((p) => typeof p === 'string')) texts.set(this, parts.join(''));
    }
  }
  let files = 0;
  globalThis.Blob = TextBlob;
  URL.createObjectURL = (blob: Blob): string => {
    const text = texts.get(blob);
    if (text === undefined) return nativeCreateObjectURL(blob);
    const file = path.join(dir, `worker-${files++}.cjs`);
    writeFileSync(file, `URL.createObjectURL = () => ${JSON.stringify(mainScript)};\n${text}`);
    return file;
  };
  os.cpus = () => [...nativeCpus(), ...nativeCpus()];
  try {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new BackendError('the threaded SIMD wasm backend failed to initialise');
    await tf.ready();
  } finally {
    os.cpus = nativeCpus;
    URL.createObjectURL = nativeCreateObjectURL;
    globalThis.Blob = NativeBlob;
    rmSync(dir, { recursive: true, force: true });
  }
  return { threads: wasm.getThreadsCount() };
}
