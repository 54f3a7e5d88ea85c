/**
 * The library's error contract: every failure the library detects is a `ClipSegError` with a stable `code`.
 * Callers branch on `code`; the CLI maps codes to exit statuses.
 */
export type ClipSegErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'INVALID_CONFIG'
  | 'FILE_NOT_FOUND'
  | 'FILE_FORMAT'
  | 'UNSAFE_PICKLE'
  | 'CHECKPOINT_KEYS'
  | 'UNSUPPORTED'
  | 'BACKEND'
  | 'NETWORK'
  | 'IMAGE_DECODE'
  | 'DATASET'
  | 'TRAINING';

export class ClipSegError extends Error {
  readonly code: ClipSegErrorCode;
  constructor(code: ClipSegErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A caller passed a value of the wrong type, range or shape. The message names the argument. */
export class InvalidArgumentError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** A tensor argument has the wrong shape; the message names the argument, the expected and the actual shape. */
export class ShapeError extends ClipSegError {
  constructor(argument: string, expected: string, actual: readonly number[] | string) {
    const got = typeof actual === 'string' ? actual : `[${actual.join(', ')}]`;
    super('SHAPE_MISMATCH', `${argument}: expected ${expected}, got ${got}`);
  }
}

export class ConfigError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIG', message, options);
  }
}

export class FileNotFoundError extends ClipSegError {
  readonly path: string;
  constructor(path: string, what = 'file') {
    super('FILE_NOT_FOUND', `${what} not found: ${path}`);
    this.path = path;
  }
}

/** A file exists but its content is malformed, truncated or of an unsupported kind; the message names the file and the defect. */
export class FileFormatError extends ClipSegError {
  readonly path: string;
  constructor(path: string, defect: string, options?: { cause?: unknown }) {
    super('FILE_FORMAT', `${path}: ${defect}`, options);
    this.path = path;
  }
}

/** A pickle asked for a global outside the allowlist; nothing from it was executed. */
export class UnsafePickleError extends ClipSegError {
  readonly global: string;
  constructor(path: string, global: string) {
    super('UNSAFE_PICKLE', `${path}: refusing pickle global '${global}' (not in the allowlist of tensor-rebuild globals)`);
    this.global = global;
  }
}

/** A checkpoint's keys or shapes do not match the model. */
export class CheckpointKeyError extends ClipSegError {
  constructor(message: string) {
    super('CHECKPOINT_KEYS', message);
  }
}

export class UnsupportedError extends ClipSegError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export class BackendError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
  }
}

export class NetworkError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NETWORK', message, options);
  }
}

export class ImageDecodeError extends ClipSegError {
  constructor(source: string, defect: string, options?: { cause?: unknown }) {
    super('IMAGE_DECODE', `${source}: ${defect}`, options);
  }
}

export class DatasetError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATASET', message, options);
  }
}

export class TrainingError extends ClipSegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRAINING', message, options);
  }
}

/** Describes a shape for error messages, e.g. `[2, 3, 352, 352]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

// Node's global; the ES library typings this project compiles against do not declare it.
const WASM_RUNTIME_ERROR = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly.RuntimeError;

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
