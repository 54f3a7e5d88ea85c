/** A `WebAssembly.RuntimeError`, as a trap inside the wasm backend throws it (Node's global, absent from the ES typings). */
export function wasmTrapError(message: string): Error {
  const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly;
  return new RuntimeError(message);
}
