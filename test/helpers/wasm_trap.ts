import { WASM_RUNTIME_ERROR } from '../../src/failures.js';

/** A `WebAssembly.RuntimeError`, as a trap inside the wasm backend throws it. */
export function wasmTrapError(message: string): Error {
  return new WASM_RUNTIME_ERROR(message);
}
