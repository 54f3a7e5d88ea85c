/**
 * Hostile pickles built opcode by opcode: forbidden globals, lengths claiming terabytes, deep nesting, memo abuse,
 * persistent ids of every shape. Each stream is read three ways: by the bare unpickler with an empty allowlist, as
 * the `data.pkl` of a zip checkpoint, and as the object pickle of a legacy checkpoint.
 */
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { unpickle } from '../../src/io/pickle.js';
import { parseTorchCheckpoint } from '../../src/io/torch_checkpoint.js';
import type { FuzzTarget } from './harness.js';
import { expectRejections } from './harness.js';
import { readAllTensors } from './torch_checkpoint_target.js';

const enc = new TextEncoder();

function le(value: bigint, width: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < width; i++) out.push(Number((value >> BigInt(8 * i)) & 0xffn));
  return out;
}

function shortString(text: string): number[] {
  const b = [...enc.encode(text)].slice(0, 255);
  return [0x8c, b.length, ...b];
}

/** Module and attribute names: the tensor-rebuild allowlist, TorchScript classes, and code runners. */
const NAMES = [
  'torch._utils',
  '_rebuild_tensor_v2',
  '_rebuild_parameter',
  'torch._tensor',
  '_rebuild_from_type_v2',
  'collections',
  'OrderedDict',
  'torch',
  'FloatStorage',
  'HalfStorage',
  'LongStorage',
  'BoolStorage',
  'Tensor',
  '__torch__.M',
  'forward',
  'torch.jit._pickle',
  'build_intlist',
  'posix',
  'system',
  'builtins',
  'eval',
  'exec',
  'getattr',
  'subprocess',
  'Popen',
  'storage',
  'cpu',
  '0',
  'w',
] as const;

/** Lengths that are valid, off by one, or absurd (u32/u64 maxima, 10^15). */
const hostileLength = fc.oneof(
  fc.nat(40),
  fc.constantFrom(0xffffffff, 0x7fffffff, 0x80000000, 1e15, 2 ** 53, Number.MAX_SAFE_INTEGER),
);

const u64Length = fc.oneof(hostileLength.map(BigInt), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));

const simpleOps: fc.Arbitrary<number[]> = fc.constantFrom<number[]>(
  [0x28], // MARK
  [0x30], // POP
  [0x31], // POP_MARK
  [0x32], // DUP
  [0x4e], // NONE
  [0x88], // NEWTRUE
  [0x89], // NEWFALSE
  [0x29], // EMPTY_TUPLE
  [0x74], // TUPLE
  [0x85], // TUPLE1
  [0x86], // TUPLE2
  [0x87], // TUPLE3
  [0x5d], // EMPTY_LIST
  [0x61], // APPEND
  [0x65], // APPENDS
  [0x7d], // EMPTY_DICT
  [0x73], // SETITEM
  [0x75], // SETITEMS
  [0x8f], // EMPTY_SET
  [0x90], // ADDITEMS
  [0x91], // FROZENSET
  [0x94], // MEMOIZE
  [0x93], // STACK_GLOBAL
  [0x52], // REDUCE
  [0x81], // NEWOBJ
  [0x62], // BUILD
  [0x51], // BINPERSID
  [0x2e], // STOP
);

const op: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 8, arbitrary: simpleOps },
  { weight: 2, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => [0x4a, ...le(BigInt(n), 4)]) },
  { weight: 2, arbitrary: fc.nat(255).map((n) => [0x4b, n]) },
  { weight: 1, arbitrary: fc.nat(65535).map((n) => [0x4d, ...le(BigInt(n), 2)]) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => [0x8a, b.length, ...b]) },
  { weight: 1, arbitrary: fc.tuple(hostileLength, fc.uint8Array({ maxLength: 12 })).map(([n, b]) => [0x8b, ...le(BigInt(n), 4), ...b]) },
  { weight: 1, arbitrary: fc.double().map((x) => [0x47, ...new Uint8Array(new Float64Array([x]).buffer).reverse()]) },
  { weight: 4, arbitrary: fc.constantFrom(...NAMES).map(shortString) },
  { weight: 1, arbitrary: fc.tuple(hostileLength, fc.string({ maxLength: 8 })).map(([n, s]) => [0x58, ...le(BigInt(n), 4), ...enc.encode(s)]) },
  { weight: 1, arbitrary: fc.tuple(u64Length, fc.string({ maxLength: 8 })).map(([n, s]) => [0x8d, ...le(n, 8), ...enc.encode(s)]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0x8e, 0x96), u64Length, fc.uint8Array({ maxLength: 8 })).map(([code, n, b]) => [code, ...le(n, 8), ...b]) },
  { weight: 1, arbitrary: fc.tuple(hostileLength, fc.uint8Array({ maxLength: 8 })).map(([n, b]) => [0x42, ...le(BigInt(n), 4), ...b]) },
  { weight: 1, arbitrary: fc.tuple(hostileLength, fc.uint8Array({ maxLength: 8 })).map(([n, b]) => [0x54, ...le(BigInt(n), 4), ...b]) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => [0x43, b.length, ...b]) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => [0x55, b.length, ...b]) },
  { weight: 1, arbitrary: u64Length.map((n) => [0x95, ...le(n, 8)]) },
  { weight: 1, arbitrary: fc.nat(7).map((n) => [0x80, n]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x71, 0x68), fc.nat(255)) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(0x72, 0x6a), fc.oneof(fc.nat(8), fc.constant(0xffffffff), fc.nat())).map(([code, n]) => [code, ...le(BigInt(n >>> 0), 4)]),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(0x63, 0x69), fc.constantFrom(...NAMES), fc.constantFrom(...NAMES))
      .map(([code, module, name]) => [code, ...enc.encode(`${module}\n${name}\n`)]),
  },
  // Deep nesting: thousands of lists or tuples inside each other, or a long flat APPENDS.
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60_000 }).map((depth) => [...new Array<number>(depth).fill(0x5d), ...new Array<number>(depth - 1).fill(0x61)]) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60_000 }).map((depth) => [...new Array<number>(depth).fill(0x28), 0x4e, ...new Array<number>(depth).fill(0x74)]) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 200_000 }).map((n) => [0x5d, 0x28, ...new Array<number>(n).fill(0x4e), 0x65]) },
  { weight: 3, arbitrary: fc.nat(255).map((b) => [b]) },
);

/** A storage persistent id the checkpoint readers accept, so streams can reach the tensor rebuilders. */
const storagePid = fc
  .tuple(fc.constantFrom('FloatStorage', 'HalfStorage', 'LongStorage', 'BoolStorage'), fc.constantFrom('0', '1'), fc.oneof(fc.nat(20), hostileLength))
  .map(([type, key, numel]) => [
    0x28,
    ...shortString('storage'),
    0x63,
    ...enc.encode(`torch\n${type}\n`),
    ...shortString(key),
    ...shortString('cpu'),
    0x4a,
    ...le(BigInt(numel | 0), 4),
    0x74,
    0x51,
  ]);

const rebuild = fc.constant<number[]>([0x63, ...enc.encode('torch._utils\n_rebuild_tensor_v2\n')]);

type Container = 'bare' | 'zip' | 'legacy';

const streamArbitrary = fc.record({
  container: fc.constantFrom<Container>('bare', 'zip', 'legacy'),
  protocol: fc.constantFrom(2, 4),
  ops: fc.array(fc.oneof({ weight: 10, arbitrary: op }, { weight: 1, arbitrary: storagePid }, { weight: 1, arbitrary: rebuild }), { maxLength: 40 }),
  stop: fc.boolean(),
});

function concat(parts: (number[] | Uint8Array)[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `torch.save`'s legacy preamble: magic number, protocol 1001, system info, each a protocol-2 pickle. */
const LEGACY_PREAMBLE = concat([
  [0x80, 2, 0x8a, 10, ...le(0x1950a86a20f9469cfc6cn, 10), 0x2e],
  [0x80, 2, 0x4d, ...le(1001n, 2), 0x2e],
  [0x80, 2, 0x7d, ...shortString('little_endian'), 0x88, 0x73, 0x2e],
]);

const STORAGE = new Uint8Array(64).fill(0x3f);

export const picklePayloads: fc.Arbitrary<{ container: Container; bytes: Uint8Array }> = streamArbitrary.map(({ container, protocol, ops, stop }) => {
  const pickle = concat([[0x80, protocol], ...ops, stop ? [0x2e] : []]);
  if (container === 'bare') return { container, bytes: pickle };
  if (container === 'zip') {
    const bytes = zipSync({ 'archive/data.pkl': [pickle, { level: 0 }], 'archive/data/0': [STORAGE, { level: 0 }], 'archive/data/1': [STORAGE, { level: 0 }] });
    return { container, bytes };
  }
  const keys = [0x80, 2, 0x5d, 0x28, ...shortString('0'), 0x65, 0x2e];
  return { container, bytes: concat([LEGACY_PREAMBLE, pickle, keys, le(16n, 8), STORAGE]) };
});

export const hostilePickleTarget: FuzzTarget<{ container: Container; bytes: Uint8Array }> = {
  name: 'unpickler (hostile opcode streams)',
  arbitrary: picklePayloads,
  run({ container, bytes }) {
    if (container === 'bare') return unpickle(bytes, { source: 'fuzz.pkl', findGlobal: () => undefined });
    return readAllTensors(parseTorchCheckpoint(bytes, `fuzz-${container}.pt`));
  },
  verify: expectRejections('unpickler (hostile opcode streams)'),
};
