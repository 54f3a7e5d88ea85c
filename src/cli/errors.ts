/**
 * How the `clipseg` binary reports failures: one line on stderr and a documented exit status (the table is in
 * docs/cli.md). Stack traces appear only with `--verbose`.
 */
import { CommanderError } from 'commander';
import { ClipSegError, type ClipSegErrorCode } from '../errors.js';
import { wasmTrap } from '../failures.js';

export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  INPUT: 3,
  MODEL: 4,
  BACKEND: 5,
  NETWORK: 6,
  TRAINING: 7,
} as const;

export type ExitStatus = (typeof ExitCode)[keyof typeof ExitCode];

const BY_CODE: Readonly<Record<ClipSegErrorCode, ExitStatus>> = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  SHAPE_MISMATCH: ExitCode.INPUT,
  FILE_NOT_FOUND: ExitCode.INPUT,
  FILE_FORMAT: ExitCode.INPUT,
  IMAGE_DECODE: ExitCode.INPUT,
  DATASET: ExitCode.INPUT,
  INVALID_CONFIG: ExitCode.MODEL,
  UNSAFE_PICKLE: ExitCode.MODEL,
  CHECKPOINT_KEYS: ExitCode.MODEL,
  UNSUPPORTED: ExitCode.MODEL,
  BACKEND: ExitCode.BACKEND,
  NETWORK: ExitCode.NETWORK,
  TRAINING: ExitCode.TRAINING,
};

/** Commander's signals that help or the version was printed on request: not failures. */
const HELP_SHOWN = new Set(['commander.helpDisplayed', 'commander.version']);

/** Operating-system errors on files the user named (an unwritable output folder, a full disk). */
const FILE_ERRNOS = new Set(['ENOENT', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EFBIG', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EDQUOT', 'EMFILE']);

export function exitCodeFor(err: unknown): ExitStatus {
  if (err instanceof CommanderError) {
    return err.exitCode === 0 || HELP_SHOWN.has(err.code) ? ExitCode.OK : ExitCode.USAGE;
  }
  if (err instanceof ClipSegError) return BY_CODE[err.code] ?? ExitCode.INTERNAL;
  if (isErrno(err) && FILE_ERRNOS.has(err.code)) return ExitCode.INPUT;
  if (wasmTrap(err) !== undefined) return ExitCode.BACKEND;
  return ExitCode.INTERNAL;
}

/** The single line printed for an error (without the program-name prefix). */
export function errorLine(err: unknown): string {
  let text: string;
  const trap = wasmTrap(err);
  if (err instanceof CommanderError) {
    text = err.code === 'commander.help' ? 'expected a subcommand (listed above)' : err.message.replace(/^error:\s*/, '');
  } else if (err instanceof ClipSegError) {
    text = err.message;
  } else if (isErrno(err) && FILE_ERRNOS.has(err.code)) {
    text = `${err.path ?? 'file'}: ${describeErrno(err.code)}`;
  } else if (trap !== undefined) {
    // Training and evaluation name the batch that failed; any other command gets the general remedy.
    text = `${trap}; smaller images, batches or prompt lists need less memory`;
  } else if (err instanceof Error) {
    text = `internal error: ${err.message} (run again with --verbose for details)`;
  } else {
    text = `internal error: ${String(err)}`;
  }
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The full report for `--verbose`: the stack, then each `cause` in turn. */
export function errorDetails(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? String(current)) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}

/** Writes the report for `err` to `write` and returns the exit status to use. */
export function reportError(err: unknown, options: { verbose: boolean; write: (text: string) => void }): ExitStatus {
  const status = exitCodeFor(err);
  if (status === ExitCode.OK) return status;
  options.write(`clipseg: error: ${errorLine(err)}\n`);
  if (options.verbose) options.write(`${errorDetails(err)}\n`);
  return status;
}

interface ErrnoLike {
  code: string;
  path?: string;
  message: string;
}

function isErrno(err: unknown): err is ErrnoLike {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function describeErrno(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no space left on the device';
    case 'EFBIG':
      return 'file too large (file-size limit reached)';
    case 'EISDIR':
      return 'is a folder, expected a file';
    case 'ENOTDIR':
      return 'a parent of this path is not a folder';
    case 'EEXIST':
      return 'already exists';
    default:
      return code;
  }
}
