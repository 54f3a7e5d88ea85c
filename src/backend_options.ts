/**
 * Backend names, environment variables and the thread-count check: everything about backend choice that does not
 * need tfjs, so that the command line can declare its options without loading it.
 */
import { InvalidArgumentError } from './errors.js';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** The environment variable that picks the backend when no name is passed. */
export const BACKEND_ENV = 'CLIPSEG_BACKEND';

/** The environment variable that sets the wasm backend's threads when no `threads` option is passed. */
export const WASM_THREADS_ENV = 'CLIPSEG_WASM_THREADS';

/** XNNPACK's pool in tfjs-backend-wasm 4.22 never exceeds Emscripten's 8 pre-created workers. */
export const MAX_WASM_THREADS = 8;

/** Checks a thread count; `argument` names where it came from in the error. */
export function checkThreads(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_WASM_THREADS) {
    const shown = typeof value === 'string' ? `'${value}'` : String(value);
    throw new InvalidArgumentError(`${argument}: expected an integer from 1 to ${MAX_WASM_THREADS}, got ${shown}`);
  }
  return value;
}
