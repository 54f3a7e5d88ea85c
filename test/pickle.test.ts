import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { FileFormatError, UnsafePickleError, UnsupportedError } from '../src/errors.js';
import { PickleObject, type PickleGlobal, unpickle } from '../src/io/pickle.js';
import { ZipArchive } from '../src/io/zip.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'checkpoints', 'malicious');
const MARKER = '/tmp/clipseg-fixture-payload-ran';

const refuseAll = { source: 'test.pkl', findGlobal: () => undefined };

function bytes(...parts: (number[] | string | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === 'string' ? new TextEncoder().encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

test('protocol-2 values decode to plain data', () => {
  // {'a': [1, -2, 300, 70000], 'b': (None, True, False), 'c': 1.5, 'd': 2**70, 'e': 'héllo'}
  const stream = bytes(
    [0x80, 2, 0x7d, 0x28],
    [0x58, ...u32(1)], 'a', [0x5d, 0x28, 0x4b, 1, 0x4a, ...u32(-2 >>> 0), 0x4d, 0x2c, 0x01, 0x4a, ...u32(70000), 0x65],
    [0x58, ...u32(1)], 'b', [0x4e, 0x88, 0x89, 0x87],
    [0x58, ...u32(1)], 'c', [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
    [0x58, ...u32(1)], 'd', [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40],
    [0x58, ...u32(1)], 'e', [0x58, ...u32(6)], 'héllo',
    [0x75, 0x2e],
  );
  const { value, end } = unpickle(stream, refuseAll);
  assert.equal(end, stream.length);
  assert.ok(value instanceof Map);
  assert.deepEqual(value.get('a'), [1, -2, 300, 70000]);
  assert.deepEqual(value.get('b'), [null, true, false]);
  assert.ok(Object.isFrozen(value.get('b')), 'tuples are frozen arrays');
  assert.equal(value.get('c'), 1.5);
  assert.equal(value.get('d'), 2n ** 70n);
  assert.equal(value.get('e'), 'héllo');
  assert.deepEqual([...value.keys()], ['a', 'b', 'c', 'd', 'e']);
});

test('memo, protocol-4 frames, MEMOIZE and STACK_GLOBAL are honoured', () => {
  const seen: string[] = [];
  const global: PickleGlobal = { name: 'm.f', reduce: (args) => ({ called: args }) };
  const stream = bytes(
    [0x80, 4, 0x95, ...u32(30), 0, 0, 0, 0],
    [0x8c, 1], 'm', [0x94, 0x8c, 1], 'f', [0x94, 0x93, 0x94],
    [0x4b, 7, 0x85, 0x52, 0x94],
    [0x68, 3, 0x86, 0x2e],
  );
  const { value } = unpickle(stream, {
    source: 's',
    findGlobal: (module, name) => {
      seen.push(`${module}.${name}`);
      return global;
    },
  });
  assert.deepEqual(seen, ['m.f']);
  assert.ok(Array.isArray(value));
  const [first, second] = value as unknown[];
  assert.deepEqual(first, { called: [7] });
  assert.equal(first, second, 'BINGET returns the memoized object itself');
});

test('NEWOBJ and BUILD give a state-carrying object only for allowlisted classes', () => {
  const cls: PickleGlobal = { name: '__torch__.M', construct: () => new PickleObject('__torch__.M') };
  const stream = bytes([0x80, 2, 0x63], '__torch__\nM\n', [0x29, 0x81, 0x7d, 0x58, ...u32(1)], 'w', [0x4b, 3, 0x73, 0x62, 0x2e]);
  const { value } = unpickle(stream, { source: 's', findGlobal: () => cls });
  assert.ok(value instanceof PickleObject);
  assert.equal(value.className, '__torch__.M');
  assert.deepEqual(value.state, new Map([['w', 3]]));
});

test('a global outside the allowlist is refused by name before anything after it is read', async () => {
  for (const [file, global] of [
    ['posix_system.pkl', 'posix.system'],
    ['builtins_eval_p4.pkl', 'builtins.eval'],
  ] as const) {
    const data = await fs.readFile(path.join(FIXTURES, file));
    assert.throws(
      () => unpickle(data, refuseAll),
      (err: unknown) => err instanceof UnsafePickleError && err.global === global && err.message.includes(global) && err.code === 'UNSAFE_PICKLE',
    );
  }
  assert.equal(existsSync(MARKER), false, 'the payload command never ran');
});

test('INST names its class inline and is refused like GLOBAL', () => {
  const stream = bytes([0x28, 0x69], 'os\nsystem\n', [0x2e]);
  assert.throws(() => unpickle(stream, refuseAll), (err: unknown) => err instanceof UnsafePickleError && err.global === 'os.system');
});

test('REDUCE on data that is not an allowlisted global is a format error, not a call', () => {
  // A dict and an empty tuple, then REDUCE.
  const stream = bytes([0x80, 2, 0x7d, 0x29, 0x52, 0x2e]);
  assert.throws(() => unpickle(stream, refuseAll), (err: unknown) => err instanceof FileFormatError && /REDUCE on a dict/.test(err.message));
});

test('lengths are checked against the stream before anything is sliced or allocated', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['BINUNICODE of 4 GB', bytes([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff], 'abc'), /runs past the end/],
    ['BINUNICODE8 of 10^15', bytes([0x80, 4, 0x8d, 0x00, 0x80, 0xc6, 0xa4, 0x7e, 0x8d, 0x03, 0x00]), /exceeds the stream size/],
    ['LONG4 of 1 MB', bytes([0x80, 2, 0x8b, 0x00, 0x00, 0x10, 0x00]), /exceeds the 1024-byte limit/],
    ['truncated operand', bytes([0x80, 2, 0x4a, 1, 2]), /truncated/],
    ['no STOP', bytes([0x80, 2, 0x4b, 1]), /truncated/],
    ['stack underflow', bytes([0x80, 2, 0x30, 0x2e]), /stack underflow/],
    ['undefined memo', bytes([0x80, 2, 0x68, 5, 0x2e]), /memo index 5/],
    ['unknown opcode', bytes([0x80, 2, 0xff]), /unsupported opcode 0xff/],
    ['protocol 6', bytes([0x80, 6, 0x2e]), /unsupported protocol 6/],
    ['append to a tuple', bytes([0x80, 2, 0x29, 0x4b, 1, 0x61, 0x2e]), /append to a tuple/],
  ];
  for (const [name, stream, pattern] of cases) {
    assert.throws(() => unpickle(stream, refuseAll), (err: unknown) => err instanceof FileFormatError && pattern.test(err.message), name);
  }
});

/** A minimal zip writer for the reader's tests: stored or deflated entries, optional comment. */
function makeZip(entries: { name: string; data: Uint8Array; deflate?: boolean }[], comment = ''): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(8, e.deflate ? 8 : 0, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, body.length, true);
    local.setUint32(22, e.data.length, true);
    local.setUint16(26, name.length, true);
    locals.push(new Uint8Array(local.buffer), name, body);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true);
    central.setUint16(10, e.deflate ? 8 : 0, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, body.length, true);
    central.setUint32(24, e.data.length, true);
    central.setUint16(28, name.length, true);
    central.setUint32(42, offset, true);
    centrals.push(new Uint8Array(central.buffer), name);
    offset += 30 + name.length + body.length;
  }
  const directorySize = centrals.reduce((n, c) => n + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, directorySize, true);
  end.setUint32(16, offset, true);
  end.setUint16(20, comment.length, true);
  return bytes(...locals, ...centrals, new Uint8Array(end.buffer), comment);
}

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('zip: stored entries are views into the archive, deflated ones inflate, comments are skipped', () => {
  const stored = new Uint8Array(64).map((_, i) => i);
  const text = new TextEncoder().encode('def forward(self):\n  return 1\n'.repeat(20));
  const archive = makeZip(
    [
      { name: 'a/data/0', data: stored },
      { name: 'a/code/x.py', data: text, deflate: true },
    ],
    'a comment',
  );
  const zip = ZipArchive.open(archive, 'a.zip');
  assert.deepEqual(zip.names(), ['a/data/0', 'a/code/x.py']);
  const view = zip.read('a/data/0', { verify: true });
  assert.deepEqual([...view], [...stored]);
  assert.equal(view.buffer, archive.buffer, 'no copy for stored entries');
  assert.equal(new TextDecoder().decode(zip.read('a/code/x.py', { verify: true })), new TextDecoder().decode(text));
});

test('zip: truncation, bad offsets, corruption and unsupported features are typed errors naming the file', () => {
  const archive = makeZip([{ name: 'a/data/0', data: new Uint8Array(100).fill(7) }]);
  assert.throws(() => ZipArchive.open(archive.subarray(0, archive.length - 5), 't.zip'), (e: unknown) => e instanceof FileFormatError && /end-of-central-directory record not found/.test(e.message) && e.message.startsWith('t.zip'));

  const hugeDirectory = Uint8Array.from(archive);
  new DataView(hugeDirectory.buffer).setUint32(hugeDirectory.length - 10, 0xfffffff0, true);
  assert.throws(() => ZipArchive.open(hugeDirectory, 't.zip'), (e: unknown) => e instanceof FileFormatError && /runs past the end/.test(e.message));

  const hugeEntry = Uint8Array.from(archive);
  // The central record's compressed and uncompressed sizes claim 1 GB.
  const centralStart = 30 + 8 + 100;
  new DataView(hugeEntry.buffer).setUint32(centralStart + 20, 1 << 30, true);
  new DataView(hugeEntry.buffer).setUint32(centralStart + 24, 1 << 30, true);
  const zip = ZipArchive.open(hugeEntry, 't.zip');
  assert.throws(() => zip.read('a/data/0'), (e: unknown) => e instanceof FileFormatError && /runs past the end of the .*truncated/.test(e.message));

  const corrupt = Uint8Array.from(archive);
  corrupt[30 + 8 + 3] = 9;
  assert.throws(() => ZipArchive.open(corrupt, 't.zip').read('a/data/0', { verify: true }), (e: unknown) => e instanceof FileFormatError && /CRC-32 mismatch/.test(e.message));

  const encrypted = Uint8Array.from(archive);
  new DataView(encrypted.buffer).setUint16(centralStart + 8, 1, true);
  assert.throws(() => ZipArchive.open(encrypted, 't.zip'), (e: unknown) => e instanceof UnsupportedError && /encrypted/.test(e.message));

  assert.throws(() => ZipArchive.open(archive, 't.zip').read('missing'), (e: unknown) => e instanceof FileFormatError && /no entry 'missing'/.test(e.message));
});
