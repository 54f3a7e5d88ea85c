/**
 * Starts tfjs-backend-wasm 4.22's threaded SIMD build under Node, which the package never does on its own
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is false when `IS_NODE`). Once that flag is forced on, three things stand in the
 * way:
 *
 * 1. Emscripten starts its pthread workers from a `blob:` URL of the worker script, which Node's `Worker` cannot
 *    load: while the backend initialises, `URL.createObjectURL` writes the blob's text to a temporary `.cjs` file
 *    and returns its path instead.
 * 2. Each worker then loads the main script from a second Blob that it turns into a `blob:` URL itself, in the
 *    worker, and that Blob holds a bundler-renamed copy of the factory (`require$$0` is undefined there): the
 *    worker file gets a one-line prologue that points its `URL.createObjectURL` at the package's own
 *    `tfjs-backend-wasm-threaded-simd.js` instead.
 * 3. The C++ side caps the XNNPACK pool at `emscripten_num_logical_cores() / 2` (it assumes two hyperthreads per
 *    core), which is 1 on a 2-core machine: `os.cpus()` reports twice the cores while the module is instantiated.
 *
 * Emscripten creates and loads its eight pre-allocated workers during initialisation, so the patches are undone
 * and the temporary files removed as soon as the backend is ready (or has failed). The pool's running workers are
 * then unreferenced: idle threads do not keep the process alive, and it ends when the main thread has nothing
 * left to do, as with the single-threaded build.
 *
 * Node-only (fs, os, worker files); `backend.ts` imports it on demand.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkThreads, importWasmBackend } from './backend.js';
import { BackendError } from './errors.js';

const THREADED_SCRIPT = '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';

/** The part of the Emscripten module the pool is reached through. */
interface EmscriptenWorker {
  unref(): void;
}
interface EmscriptenModule {
  PThread?: { runningWorkers?: EmscriptenWorker[]; unusedWorkers?: EmscriptenWorker[] };
}

/**
 * While `start` runs: Blobs made of strings remember their text, `URL.createObjectURL` of such a Blob writes it
 * to a `.cjs` file in a fresh temporary folder (which is removed afterwards), and `os.cpus()` lists every core
 * twice.
 */
async function withWorkerFiles<T>(start: () => Promise<T>): Promise<T> {
  const mainScript = createRequire(import.meta.url).resolve(THREADED_SCRIPT);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipseg-wasm-threads-'));
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
    return await start();
  } finally {
    os.cpus = nativeCpus;
    URL.createObjectURL = nativeCreateObjectURL;
    globalThis.Blob = NativeBlob;
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Initialises the `wasm` backend from the threaded SIMD build with `threads` threads and makes it the active
 * backend; returns the threads XNNPACK actually uses. The build is chosen once per process: this must run before
 * anything else initialises the wasm backend.
 */
export async function startThreadedWasm(threads: number): Promise<number> {
  checkThreads(threads, 'threads');
  if ('wasm' in tf.engine().registry) {
    throw new BackendError('threads: the wasm backend already runs in this process; its build is chosen once per process, before its first use');
  }
  const wasm = await importWasmBackend();
  let started = false;
  let failure: unknown;
  try {
    started = await withWorkerFiles(async () => {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      wasm.setThreadsCount(threads);
      if (!(await tf.setBackend('wasm'))) return false;
      await tf.ready();
      return tf.getBackend() === 'wasm';
    });
  } catch (err) {
    failure = err;
  }
  if (!started) {
    // A later attempt with the default build must not pick the threaded binary again.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    const why = failure === undefined ? '' : ` (${(failure as Error).message})`;
    throw new BackendError(`the threaded SIMD wasm build failed to start with ${threads} threads${why}; use the default build (no threads option)`, { cause: failure });
  }
  const module = (tf.backend() as unknown as { wasm?: EmscriptenModule }).wasm;
  for (const worker of [...(module?.PThread?.runningWorkers ?? []), ...(module?.PThread?.unusedWorkers ?? [])]) worker.unref();
  return wasm.getThreadsCount();
}
