/**
 * Streams the elements of a top-level JSON array from a file without holding the file in memory
 * (PhraseCut's `refer_train.json` is 344 MB).
 *
 * A small byte scanner finds where each element starts and ends (tracking strings, escapes and bracket depth;
 * structural bytes are ASCII, so UTF-8 continuation bytes never confuse it), and each element is then parsed on its
 * own with `JSON.parse`, which keeps full JSON strictness per element. The scanner is written here rather than
 * taken from a streaming library because the index needs each element's byte offset and length, so a record can later
 * be re-read with one positional read; streaming tokenisers do not report those.
 *
 * The array structure itself (brackets, commas, trailing data, truncation) is checked strictly and a defect is a
 * `FileFormatError`. A single element that is not valid JSON is reported as such (`error`), so a caller can
 * skip the record and go on.
 */
import { promises as fs } from 'node:fs';
import { FileFormatError, FileNotFoundError } from '../errors.js';

export interface JsonArrayElement {
  index: number;
  /** Byte offset of the element's first byte in the file. */
  offset: number;
  /** Byte length of the element's text. */
  length: number;
  /** The parsed value, absent when the element is not valid JSON. */
  value?: unknown;
  /** Why the element could not be parsed. */
  error?: string;
}

const enum State {
  BeforeArray,
  ExpectFirst,
  ExpectValue,
  InValue,
  AfterValue,
  Done,
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isSpace(b: number): boolean {
  return b === SPACE || b === LF || b === CR || b === TAB;
}

function describeByte(b: number): string {
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses one element's bytes; never throws. */
export function parseJsonBytes(bytes: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(decoder.decode(bytes)) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

export interface StreamOptions {
  /** Read size in bytes (default 1 MiB). */
  chunkSize?: number;
}

/** Yields every element of the JSON array stored in `path`, in order. */
export async function* streamJsonArray(path: string, options: StreamOptions = {}): AsyncGenerator<JsonArrayElement> {
  const chunkSize = options.chunkSize ?? 1 << 20;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path);
    throw new FileFormatError(path, `cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const buffer = new Uint8Array(chunkSize);
    let state = State.BeforeArray as State;
    let position = 0;
    let index = 0;
    let depth = 0;
    let inString = false;
    let escaped = false;
    let scalar = false;
    let start = 0;
    let pieces: Uint8Array[] = [];
    let pieceFrom = 0;
    const fail = (at: number, defect: string): never => {
      throw new FileFormatError(path, `not a JSON array at byte ${at}: ${defect}`);
    };
    const finish = (chunk: Uint8Array, endExclusive: number): JsonArrayElement => {
      pieces.push(chunk.slice(pieceFrom, endExclusive));
      const total = pieces.reduce((n, p) => n + p.length, 0);
      const bytes = pieces.length === 1 ? (pieces[0] as Uint8Array) : concat(pieces, total);
      pieces = [];
      return { index: index++, offset: start, length: total, ...parseJsonBytes(bytes) };
    };
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkSize, position);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      pieceFrom = 0;
      const ready: JsonArrayElement[] = [];
      for (let i = 0; i < bytesRead; i++) {
        const b = chunk[i] as number;
        const at = position + i;
        switch (state) {
          case State.BeforeArray:
            if (at === 0 && b === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
              i += 2;
            } else if (b === OPEN_BRACKET) {
              state = State.ExpectFirst;
            } else if (!isSpace(b)) {
              fail(at, `expected '[', got ${describeByte(b)}`);
            }
            break;
          case State.ExpectFirst:
          case State.ExpectValue:
            if (isSpace(b)) break;
            if (b === CLOSE_BRACKET && state === State.ExpectFirst) {
              state = State.Done;
              break;
            }
            if (b === COMMA || b === CLOSE_BRACKET) fail(at, `expected a value, got ${describeByte(b)}`);
            state = State.InValue;
            start = at;
            pieceFrom = i;
            depth = b === OPEN_BRACE || b === OPEN_BRACKET ? 1 : 0;
            inString = b === QUOTE;
            escaped = false;
            scalar = depth === 0 && !inString;
            break;
          case State.InValue:
            if (scalar) {
              if (isSpace(b) || b === COMMA || b === CLOSE_BRACKET) {
                ready.push(finish(chunk, i));
                state = State.AfterValue;
                i--;
              }
            } else if (inString) {
              if (escaped) escaped = false;
              else if (b === BACKSLASH) escaped = true;
              else if (b === QUOTE) {
                inString = false;
                if (depth === 0) {
                  ready.push(finish(chunk, i + 1));
                  state = State.AfterValue;
                }
              }
            } else if (b === QUOTE) {
              inString = true;
            } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
              depth++;
            } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
              depth--;
              if (depth === 0) {
                ready.push(finish(chunk, i + 1));
                state = State.AfterValue;
              }
            }
            break;
          case State.AfterValue:
            if (isSpace(b)) break;
            if (b === COMMA) state = State.ExpectValue;
            else if (b === CLOSE_BRACKET) state = State.Done;
            else fail(at, `expected ',' or ']' after element ${index - 1}, got ${describeByte(b)}`);
            break;
          case State.Done:
            if (!isSpace(b)) fail(at, `unexpected ${describeByte(b)} after the closing ']'`);
            break;
        }
      }
      if (state === State.InValue) pieces.push(chunk.slice(pieceFrom, bytesRead));
      position += bytesRead;
      yield* ready;
    }
    if (state !== State.Done) {
      fail(position, state === State.BeforeArray ? 'the file is empty' : 'the file ends before the closing \']\'');
    }
  } finally {
    await handle.close();
  }
}

function concat(pieces: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of pieces) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Reads and parses the element at a known byte range (from `JsonArrayElement.offset/length`). */
export async function readJsonRange(handle: fs.FileHandle, offset: number, length: number): Promise<{ value?: unknown; error?: string }> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
    if (bytesRead === 0) return { error: `file ended after ${done} of ${length} bytes` };
    done += bytesRead;
  }
  return parseJsonBytes(bytes);
}
