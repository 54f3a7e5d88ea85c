import fc from 'fast-check';
import { parseSafetensors, safetensorsBytes, type DType } from '../../src/io/safetensors.js';
import type { FuzzTarget } from './harness.js';
import { expectBothOutcomes, mutatedBytes } from './harness.js';

function seedFiles(): Uint8Array[] {
  return [
    safetensorsBytes(
      {
        'a.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        'a.position_ids': { dtype: 'I64', shape: [1, 3], data: new BigInt64Array([0n, 1n, 2n]) },
        half: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      },
      { format: 'pt' },
    ),
    safetensorsBytes({ empty: { dtype: 'U8', shape: [0], data: new Uint8Array(0) }, b: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) } }),
  ];
}

/** Reads every tensor the way loaders do, so decoding paths are exercised, not just the header. */
function readAll(bytes: Uint8Array): number {
  const file = parseSafetensors(bytes, 'fuzz.safetensors');
  let n = 0;
  for (const key of file.keys()) {
    const { dtype } = file.info(key);
    n += file.getFloat32(key).length;
    if (dtype === 'I64' || dtype === 'I32' || dtype === 'U8' || dtype === 'BOOL') n += file.getInt32(key).length;
  }
  return n;
}

export const safetensorsBytesTarget: FuzzTarget<Uint8Array> = {
  name: 'safetensors (mutated files)',
  arbitrary: mutatedBytes(seedFiles()),
  run: readAll,
  verify: expectBothOutcomes('safetensors (mutated files)'),
};

const DTYPES: DType[] = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL'];

/** Structured headers: plausible-looking entries with hostile numbers (huge shapes, reversed offsets, floats). */
const headerArbitrary = fc
  .tuple(
    fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.record({
        dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 4 })),
        shape: fc.array(fc.oneof(fc.nat(8), fc.constant(1e15), fc.constant(-1), fc.double()), { maxLength: 4 }),
        data_offsets: fc.array(fc.oneof(fc.nat(64), fc.constant(2 ** 53), fc.constant(-3), fc.double()), { maxLength: 3 }),
      }),
      { maxKeys: 4 },
    ),
    fc.nat(64),
  )
  .map(([header, dataLength]) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(8 + json.length + dataLength);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    return bytes;
  });

export const safetensorsHeaderTarget: FuzzTarget<Uint8Array> = {
  name: 'safetensors (structured headers)',
  arbitrary: headerArbitrary,
  run: readAll,
  verify: expectBothOutcomes('safetensors (structured headers)'),
};
