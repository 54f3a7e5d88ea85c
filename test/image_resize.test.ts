import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { InvalidArgumentError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { Channels, RawImage } from '../src/processor/image.js';
import { type PillowResample, pillowResize } from '../src/processor/pillow_resize.js';

const DIR = new URL('./fixtures/images/', import.meta.url);

interface ResizeCase {
  key: string;
  mode: 'RGB' | 'L' | 'RGBA';
  width: number;
  height: number;
  filter: PillowResample;
}

const CHANNELS: Record<ResizeCase['mode'], Channels> = { L: 1, RGB: 3, RGBA: 4 };

const cases = JSON.parse(readFileSync(new URL('resize_cases.json', DIR), 'utf8')) as ResizeCase[];
const fixture = await readSafetensors(new URL('resize.safetensors', DIR).pathname);

function source(mode: ResizeCase['mode']): RawImage {
  const [height, width] = fixture.info(`source_${mode}`).shape as [number, number];
  return { data: fixture.getBytes(`source_${mode}`).slice(), width, height, channels: CHANNELS[mode] };
}

for (const c of cases) {
  test(`pillowResize ${c.mode} 97x61 -> ${c.width}x${c.height} ${c.filter} equals Pillow byte for byte`, () => {
    const out = pillowResize(source(c.mode), c.width, c.height, c.filter);
    const expected = fixture.getBytes(c.key);
    assert.equal(out.width, c.width);
    assert.equal(out.height, c.height);
    assert.equal(out.channels, CHANNELS[c.mode]);
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) if (out.data[i] !== expected[i]) mismatches++;
    assert.equal(mismatches, 0, `${mismatches} of ${expected.length} samples differ`);
  });
}

test('pillowResize returns an equal copy when the size is unchanged', () => {
  const src = source('RGB');
  const out = pillowResize(src, src.width, src.height, 'bilinear');
  assert.deepEqual(out.data, src.data);
  assert.notEqual(out.data, src.data);
});

test('pillowResize of a constant image stays constant for every filter and size', () => {
  const img: RawImage = { data: new Uint8Array(37 * 23 * 3).fill(173), width: 37, height: 23, channels: 3 };
  for (const filter of ['nearest', 'bilinear', 'bicubic', 'box', 'hamming', 'lanczos'] as const) {
    for (const [w, h] of [[5, 3], [90, 41], [37, 60], [12, 23]] as const) {
      const out = pillowResize(img, w, h, filter);
      assert.ok(out.data.every((v) => v === 173), `${filter} ${w}x${h}`);
    }
  }
});

test('pillowResize rejects bad sizes, filters and images with InvalidArgumentError', () => {
  const img = source('RGB');
  assert.throws(() => pillowResize(img, 0, 10), InvalidArgumentError);
  assert.throws(() => pillowResize(img, 10, 2.5), /outHeight: expected a positive integer, got 2.5/);
  assert.throws(() => pillowResize(img, 10, 10, 'area' as PillowResample), /resample: expected one of/);
  assert.throws(() => pillowResize({ ...img, data: new Uint8Array(5) }, 10, 10), /image.data: expected 17751 bytes/);
  assert.throws(() => pillowResize(null as unknown as RawImage, 10, 10), InvalidArgumentError);
});
