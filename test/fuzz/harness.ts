/**
 * Shared fuzzing harness: every target maps arbitrary bytes (or values) to either a result or one of the
 * library's own typed errors. Anything else (an uncaught error of another type, a hang, an allocation over the
 * guard's limit) is a failure. The same targets run bounded in `npm test` and long via `npm run fuzz`; both run
 * each target in a child process (see `isolate.ts`) so that a synchronous hang or a crash is caught too.
 */
import fc from 'fast-check';
import { ClipSegError } from '../../src/errors.js';
import { takeAllocationViolations } from './alloc_guard.js';

export interface FuzzTarget<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Runs the code under test; may resolve or throw a ClipSegError. */
  run(input: T): unknown | Promise<unknown>;
  /** Checks the outcome mix of a whole run (e.g. that mutations reached both outcomes); throws when it is wrong. */
  verify?(stats: FuzzStats): void;
}

export interface FuzzStats {
  runs: number;
  ok: number;
  typedErrors: Record<string, number>;
}

export interface FuzzOptions {
  seed?: number;
  /** Called before each input runs, with its 0-based index. */
  onCase?(index: number): void;
}

/** Per-input time limit for asynchronous work; a slower input counts as a hang. */
export const CASE_TIMEOUT_MS = 5000;

export async function fuzz<T>(target: FuzzTarget<T>, numRuns: number, options: FuzzOptions = {}): Promise<FuzzStats> {
  const stats: FuzzStats = { runs: 0, ok: 0, typedErrors: {} };
  await fc.assert(
    fc.asyncProperty(target.arbitrary, async (input) => {
      options.onCase?.(stats.runs);
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
        // An over-limit allocation fails the input even when the library wrapped the RangeError in its own error.
        const violations = takeAllocationViolations();
        if (violations.length > 0) throw new Error(`unchecked allocation: ${violations.join('; ')}`);
      }
    }),
    { numRuns, seed: options.seed, endOnFailure: true },
  );
  target.verify?.(stats);
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

/** Requires that inputs reached both outcomes: some decoded, some were rejected with a typed error. */
export function expectBothOutcomes(name: string): (stats: FuzzStats) => void {
  return (stats) => {
    if (stats.ok === 0) throw new Error(`${name}: no input was accepted, so mutations never got past the first check`);
    if (Object.keys(stats.typedErrors).length === 0) throw new Error(`${name}: no input was rejected`);
  };
}

/** Requires that some inputs were rejected with a typed error (for targets whose inputs are mostly hostile). */
export function expectRejections(name: string): (stats: FuzzStats) => void {
  return (stats) => {
    if (Object.keys(stats.typedErrors).length === 0) throw new Error(`${name}: no input was rejected`);
  };
}
