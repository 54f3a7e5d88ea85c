/**
 * How failures inside the backend reach users: a trap inside the wasm backend described for an error message, and
 * a release step that cannot hide the error it follows. Internal: the public error contract is `errors.ts`.
 */
import { BackendError } from './errors.js';

/** `WebAssembly.RuntimeError`: Node's global, which the ES library typings this project compiles against lack. */
export const WASM_RUNTIME_ERROR = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly.RuntimeError;

/**
 * What a trap inside the wasm backend means, for an error message; undefined for any other error. The backend's
 * memory ends at 4 GB, and an allocation past it surfaces as a bare WebAssembly.RuntimeError ('Aborted()',
 * 'memory access out of bounds'). A bug in a kernel would trap the same way, so the text says "most likely".
 */
export function wasmTrap(err: unknown): string | undefined {
  if (!(err instanceof WASM_RUNTIME_ERROR)) return undefined;
  // The module's own advice to rebuild it with assertions is for the backend's developers, not for our users.
  const reason = err.message.replace(/ Build with .*$/, '');
  return `the wasm backend failed (${reason}), most likely out of memory (it has at most 4 GB)`;
}

/** After an abort or an out-of-bounds access, every later call into the wasm module aborts (measured for both). */
export const WASM_RESTART = 'in a new process (the failed wasm backend stays unusable)';

/** Where memory past the wasm backend's 4 GB is to be had. */
export const NATIVE_BACKEND = 'a native backend (@tensorflow/tfjs-node, or -node-gpu for CUDA GPUs), whose memory is not capped at 4 GB';

/**
 * Rethrows `err`: a trap inside the wasm backend as a BackendError whose message `explain` writes from the trap's
 * description (where it happened, what to change), any other error unchanged.
 */
export function rethrowWasmTrap(err: unknown, explain: (trap: string) => string): never {
  const trap = wasmTrap(err);
  if (trap === undefined) throw err;
  throw new BackendError(explain(trap), { cause: err });
}

/**
 * Runs `body`, then `release` whether or not it failed; when both fail, the body's error is the one thrown. After a
 * trap inside the wasm backend, freeing tensors can trap again (an out-of-bounds access in the backend's `free`,
 * measured), and that echo would otherwise replace the error that says what happened and what to do.
 */
export async function withRelease<T>(body: () => Promise<T>, release: () => void | Promise<void>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await Promise.resolve()
      .then(release)
      .catch(() => undefined);
    throw err;
  }
  await release();
  return result;
}
