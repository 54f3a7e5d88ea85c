/** The safetensors reader and writer: files from Python's safetensors library, round trips, and every malformed case. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileFormatError, FileNotFoundError, InvalidArgumentError } from '../src/errors.js';
import {
  type DType,
  floatToHalf,
  halfToFloat,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  safetensorsBytes,
  serializeSafetensors,
  type WriteTensor,
  writeSafetensors,
} from '../src/io/safetensors.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';

const python = readFixture('model', 'dtypes.safetensors');

function sameFloats(actual: ArrayLike<number>, expected: ArrayLike<number>, name: string): void {
  assert.equal(actual.length, expected.length, `${name}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Object.is(actual[i], expected[i]), `${name}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('files written by Python safetensors', () => {
  test('metadata, dtypes and shapes', () => {
    assert.deepEqual(python.metadata, { format: 'pt', note: 'unicode \u2713' });
    const dtypes: Record<string, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16', f64: 'F64', i64: 'I64', i32: 'I32', u8: 'U8', bool: 'BOOL' };
    for (const [key, dtype] of Object.entries(dtypes)) assert.equal(python.info(key).dtype, dtype, key);
    assert.deepEqual(python.info('i64').shape, [2, 2]);
    assert.deepEqual(python.info('scalar').shape, []);
    assert.deepEqual(python.info('empty').shape, [0, 3]);
  });

  for (const key of ['f32', 'f16', 'bf16', 'f64', 'i64', 'i32', 'u8', 'bool', 'scalar', 'empty']) {
    test(`${key} reads back as float32 equal to the reference values`, () => {
      const expected = Float32Array.from(python.getFloat32(`${key}.expected`));
      sameFloats(python.getFloat32(key), expected, key);
    });
  }

  test('NaN survives', () => {
    assert.ok(Number.isNaN(python.getFloat32('f32_nan')[0]));
  });

  test('integer tensors read as int32, and values outside int32 are an error naming the tensor', () => {
    assert.deepEqual([...python.getInt32('i64')], [-3, 0, 2147483647, 49407]);
    assert.deepEqual([...python.getInt32('i32')], [-2147483648, 5]);
    assert.deepEqual([...python.getInt32('u8')], [0, 255, 7]);
    assert.deepEqual([...python.getInt32('bool')], [1, 0, 1]);
    assert.throws(() => python.getInt32('i64_big'), (e: unknown) => e instanceof FileFormatError && /tensor 'i64_big': value 1099511627776 at index 0 does not fit in int32/.test(e.message));
    assert.throws(() => python.getInt32('f32'), (e: unknown) => e instanceof FileFormatError && /tensor 'f32': expected an integer dtype, got F32/.test(e.message));
    assert.throws(() => python.info('nope'), (e: unknown) => e instanceof InvalidArgumentError && /no tensor named 'nope'/.test(e.message));
  });

  test("floatToHalf rounds exactly as PyTorch's .half() (nearest, ties to even, overflow to inf)", () => {
    const inputs = python.getFloat32('f16.input');
    const bits = new Uint16Array(Uint8Array.from(python.getBytes('f16')).buffer);
    for (let i = 0; i < inputs.length; i++) {
      assert.equal(floatToHalf(inputs[i]!), bits[i], `${inputs[i]} -> 0x${bits[i]!.toString(16)}`);
      assert.ok(Object.is(halfToFloat(bits[i]!), Math.fround(python.getFloat32('f16.expected')[i]!)));
    }
    assert.equal(floatToHalf(NaN) & 0x7c00, 0x7c00);
    assert.notEqual(floatToHalf(NaN) & 0x3ff, 0);
  });
});

describe('round trips through the writer', () => {
  const tensors: Record<string, WriteTensor> = {
    f32: { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1.5, -0, Infinity, 3.25]) },
    f16: { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff]) },
    bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc0a0]) },
    f64: { dtype: 'F64', shape: [1], data: Float64Array.from([0.1]) },
    i64: { dtype: 'I64', shape: [2], data: BigInt64Array.from([-5n, 49407n]) },
    i32: { dtype: 'I32', shape: [1], data: Int32Array.from([-7]) },
    u8: { dtype: 'U8', shape: [1, 3], data: Uint8Array.from([1, 2, 3]) },
    bool: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([4]) },
  };
  const expected: Record<string, number[]> = {
    f32: [1.5, -0, Infinity, 3.25],
    f16: [1, -2, 65504],
    bf16: [1, -5],
    f64: [Math.fround(0.1)],
    i64: [-5, 49407],
    i32: [-7],
    u8: [1, 2, 3],
    bool: [0, 1],
    scalar: [4],
  };
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('in memory: every dtype, shapes, metadata, an 8-byte aligned header', () => {
    const bytes = safetensorsBytes(tensors, { format: 'clipseg-tfjs', layout: 'tfjs' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    const file = parseSafetensors(bytes, 'memory');
    assert.deepEqual(file.metadata, { format: 'clipseg-tfjs', layout: 'tfjs' });
    assert.deepEqual(file.keys(), Object.keys(tensors));
    for (const [key, t] of Object.entries(tensors)) {
      assert.equal(file.info(key).dtype, t.dtype);
      assert.deepEqual(file.info(key).shape, t.shape);
      sameFloats(file.getFloat32(key), expected[key]!, key);
    }
  });

  test('on disk, atomically: the same tensors come back and no temporary file remains', async () => {
    const target = path.join(tmp, 'weights.safetensors');
    await writeSafetensors(target, tensors);
    const file = await readSafetensors(target);
    for (const key of Object.keys(tensors)) sameFloats(file.getFloat32(key), expected[key]!, key);
    assert.deepEqual(file.metadata, {});
    assert.deepEqual(fs.readdirSync(tmp), ['weights.safetensors']);
  });

  test('the writer refuses data that does not match its shape, and non-string metadata', () => {
    assert.throws(() => serializeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), (e: unknown) => e instanceof InvalidArgumentError && /tensor 'x': F32 \[3\] needs 12 bytes, got 8/.test(e.message));
    assert.throws(() => serializeSafetensors({}, { n: 1 as unknown as string }), (e: unknown) => e instanceof InvalidArgumentError && /metadata\['n'\]: expected a string, got number/.test(e.message));
  });
});

/** A file from a header (object or raw text) and a data section, with an optional forged header length. */
function forge(header: unknown, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

describe('malformed files are FileFormatErrors naming the file and the defect', () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
  const good = forge({ a: entry('F32', [2], [0, 8]) }, new Uint8Array(8));
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than the length prefix', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
    ['header length past the end', forge({}, new Uint8Array(0), 1000n), /header length 1000 runs past the end of the file \(10 bytes\)/],
    ['header length over the limit', forge({}, new Uint8Array(0), BigInt(MAX_HEADER_BYTES) + 1n), /header length 100000001 exceeds the 100000000-byte limit/],
    ['header not JSON', forge('{"a": '), /header is not valid UTF-8 JSON/],
    ['header not an object', forge('[1, 2]'), /header is not a JSON object/],
    ['metadata not strings', forge({ __metadata__: { n: 1 } }), /__metadata__ value for 'n' is not a string/],
    ['an unknown dtype', forge({ a: entry('F8', [1], [0, 1]) }, new Uint8Array(1)), /tensor 'a' has unsupported dtype "F8"/],
    ['a negative dimension', forge({ a: entry('F32', [-1], [0, 4]) }, new Uint8Array(4)), /tensor 'a' has an invalid shape \[-1\]/],
    ['a fractional dimension', forge({ a: entry('F32', [1.5], [0, 4]) }, new Uint8Array(4)), /tensor 'a' has an invalid shape \[1\.5\]/],
    ['offsets that are not a pair', forge({ a: entry('F32', [1], [0]) }, new Uint8Array(4)), /tensor 'a' has invalid data_offsets \[0\]/],
    ['offsets in the wrong order', forge({ a: entry('F32', [0], [4, 0]) }, new Uint8Array(4)), /tensor 'a' has invalid data_offsets \[4,0\]/],
    ['a byte count that does not match the shape', forge({ a: entry('F32', [3], [0, 8]) }, new Uint8Array(8)), /tensor 'a' \(F32 \[3\]\) needs 12 bytes but its offsets span 8/],
    ['overlapping tensors', forge({ a: entry('F32', [2], [0, 8]), b: entry('F32', [1], [4, 8]) }, new Uint8Array(8)), /tensor 'b' overlaps the previous tensor/],
    ['a gap between tensors', forge({ a: entry('F32', [1], [0, 4]), b: entry('F32', [1], [8, 12]) }, new Uint8Array(12)), /gap before tensor 'b' at byte 4/],
    ['offsets beyond the data', forge({ a: entry('F32', [4], [0, 16]) }, new Uint8Array(8)), /tensors cover 16 bytes but the data section holds 8 bytes/],
    ['trailing data', forge({ a: entry('F32', [2], [0, 8]) }, new Uint8Array(12)), /tensors cover 8 bytes but the data section holds 12 bytes/],
    ['a truncated file', good.subarray(0, good.length - 3), /tensors cover 8 bytes but the data section holds 5 bytes/],
  ];
  for (const [name, bytes, message] of cases) {
    test(name, () => {
      assert.throws(() => parseSafetensors(bytes, 'bad.safetensors'), (e: unknown) => e instanceof FileFormatError && e.message.startsWith('bad.safetensors: invalid safetensors file: ') && message.test(e.message));
    });
  }

  test('the well-formed control case parses', () => {
    assert.deepEqual([...parseSafetensors(good, 'good').getFloat32('a')], [0, 0]);
  });

  test('readSafetensors: a missing file, and a header length larger than the file, before reading the body', async () => {
    await assert.rejects(readSafetensors(fixturePath('model', 'missing.safetensors')), (e: unknown) => e instanceof FileNotFoundError && /safetensors file not found: .*missing\.safetensors/.test(e.message));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-bad-'));
    const file = path.join(tmp, 'huge.safetensors');
    fs.writeFileSync(file, forge({}, new Uint8Array(0), 1n << 40n));
    await assert.rejects(readSafetensors(file), (e: unknown) => e instanceof FileFormatError && /huge\.safetensors: invalid safetensors file: header length 1099511627776 does not fit in a 10-byte file/.test(e.message));
    fs.rmSync(tmp, { recursive: true });
  });
});
