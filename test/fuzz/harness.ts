/**
 * Shared fuzzing harness: every target maps arbitrary bytes (or values) to either a result or one of the
 * library's own typed errors. Anything else (an uncaught error of another type, a hang) is a failure.
 * The same targets run bounded in `npm test` and long via `npm run fuzz`.
 */
import fc from 'fast-check';
import { ClipSegError } from '../../src/errors.js';

export interface FuzzTarget<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Runs the code under test; may resolve or throw a ClipSegError. */
  run(input: T): unknown | Promise<unknown>;
}

export interface FuzzStats {
  runs: number;
  ok: number;
  typedErrors: Record<string, number>;
}

/** Per-input time limit; a slower input counts as a hang. */
export const CASE_TIMEOUT_MS = 5000;

export async function fuzz<T>(target: FuzzTarget<T>, numRuns: number, seed?: number): Promise<FuzzStats> {
  const stats: FuzzStats = { runs: 0, ok: 0, typedErrors: {} };
  await fc.assert(
    fc.asyncProperty(target.arbitrary, async (input) => {
      stats.runs++;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${target.name}: input took longer than ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
      });
      try {
        await Promise.race([Promise.resolve().then(() => target.run(input)), timeout]);
        stats.ok++;
      } catch (err) {
        if (!(err instanceof ClipSegError)) throw err;
        stats.typedErrors[err.code] = (stats.typedErrors[err.code] ?? 0) + 1;
      } finally {
        clearTimeout(timer);
      }
    }),
    { numRuns, seed, endOnFailure: true },
  );
  return stats;
}

/** Byte-level mutations of a valid seed file: flips, truncations, insertions, and overwritten 8-byte words. */
export function mutatedBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('word' as const), at: fc.nat(), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  );
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([seed, mutations]) => {
      let bytes = new Uint8Array(seed);
      for (const m of mutations) {
        const at = bytes.length === 0 ? 0 : m.at % bytes.length;
        if (m.kind === 'flip') {
          if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << m.bit);
        } else if (m.kind === 'truncate') {
          bytes = bytes.subarray(0, at);
        } else if (m.kind === 'insert') {
          const next = new Uint8Array(bytes.length + m.bytes.length);
          next.set(bytes.subarray(0, at));
          next.set(m.bytes, at);
          next.set(bytes.subarray(at), at + m.bytes.length);
          bytes = next;
        } else if (bytes.length >= 8) {
          const word = Math.min(at, bytes.length - 8);
          new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(word, m.value, true);
        }
      }
      return bytes;
    });
}
