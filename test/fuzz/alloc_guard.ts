/**
 * Catches allocations sized by an unchecked number from the input. Installed in the fuzzing child process before
 * any library module loads: typed-array, ArrayBuffer and Buffer allocations above a limit are refused and recorded.
 * Recording matters because library code may wrap the resulting RangeError in one of its own typed errors, which
 * would otherwise look like a correct rejection; the harness checks the record after every input.
 */

/** Largest single allocation the fuzzed code may make; inputs are at most a few hundred kilobytes. */
export const DEFAULT_ALLOCATION_LIMIT = 64 * 2 ** 20;

export class AllocationLimitError extends Error {}

const violations: string[] = [];
let limit = DEFAULT_ALLOCATION_LIMIT;
let installed = false;

const TYPED_ARRAYS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;

function check(bytes: number, what: string): void {
  if (bytes > limit) {
    // The frames below the guard say which decoder asked for the memory.
    const frames = (new Error().stack ?? '').split('\n').slice(3, 9).join('\n');
    const message = `${what} of ${bytes} bytes exceeds the ${limit}-byte fuzzing limit\n${frames}`;
    violations.push(message);
    throw new AllocationLimitError(message);
  }
}

/** Bytes requested by a constructor call; views over an existing buffer and copies of real arrays allocate nothing unchecked. */
function requestedBytes(args: unknown[], bytesPerElement: number): number {
  const first = args[0];
  if (typeof first === 'number') return first * bytesPerElement;
  if (typeof first === 'object' && first !== null && !(first instanceof ArrayBuffer) && !ArrayBuffer.isView(first) && !Array.isArray(first)) {
    const length = (first as { length?: unknown }).length;
    if (typeof length === 'number') return length * bytesPerElement;
  }
  return 0;
}

export function installAllocationGuard(maxBytes = DEFAULT_ALLOCATION_LIMIT): void {
  limit = maxBytes;
  if (installed) return;
  installed = true;
  const globals = globalThis as unknown as Record<string, unknown>;
  for (const name of TYPED_ARRAYS) {
    const original = globals[name] as { new (...args: unknown[]): unknown; BYTES_PER_ELEMENT: number };
    globals[name] = new Proxy(original, {
      construct(target, args, newTarget) {
        check(requestedBytes(args, target.BYTES_PER_ELEMENT), name);
        return Reflect.construct(target, args, newTarget) as object;
      },
    });
  }
  for (const name of ['ArrayBuffer', 'SharedArrayBuffer'] as const) {
    const original = globals[name] as new (...args: unknown[]) => unknown;
    globals[name] = new Proxy(original, {
      construct(target, args, newTarget) {
        check(typeof args[0] === 'number' ? args[0] : 0, name);
        return Reflect.construct(target, args, newTarget) as object;
      },
    });
  }
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const original = Buffer[name] as (size: number, ...rest: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[name] = (size: number, ...rest: unknown[]): Buffer => {
      check(typeof size === 'number' ? size : 0, `Buffer.${name}`);
      return original.call(Buffer, size, ...rest);
    };
  }
}

/** The violations recorded since the last call, cleared. */
export function takeAllocationViolations(): string[] {
  return violations.splice(0, violations.length);
}
