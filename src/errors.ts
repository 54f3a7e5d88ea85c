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
