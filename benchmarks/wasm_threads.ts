/**
 * The threaded SIMD wasm build for the benchmark scripts. The library starts it through `selectBackend('wasm',
 * { threads })` from 2 threads up; the probes also compare that build with a single thread, which only the
 * lower-level starter offers.
 */
import { startThreadedWasm } from '../src/wasm_threads.js';

export { MAX_WASM_THREADS } from '../src/backend.js';

export interface ThreadedWasm {
  /** Threads XNNPACK actually uses, as the backend reports it. */
  threads: number;
}

/**
 * Initialises the `wasm` backend from the threaded SIMD binary with `threads` threads and makes it the active
 * backend. Must run before anything else initialises the wasm backend in this process.
 */
export async function initThreadedWasm(threads: number): Promise<ThreadedWasm> {
  return { threads: await startThreadedWasm(threads) };
}
