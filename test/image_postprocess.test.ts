import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';
import { loadImage, loadLegendFont } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { COLORMAP_NAMES, colormapTable } from '../src/processor/colormap.js';
import type { RawImage } from '../src/processor/image.js';
import { OVERLAY_COLORS, overlayMasks } from '../src/processor/overlay.js';
import {
  DEFAULT_MASK_THRESHOLD,
  type ProbabilityMap,
  binaryMask,
  logitsToProbabilities,
  probabilitiesTensor,
  probabilityImage,
  resizeProbabilityMap,
  sigmoid,
} from '../src/processor/postprocess.js';

await tf.setBackend('wasm');

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'images');
const fixture = await readSafetensors(path.join(DIR, 'postprocess.safetensors'));
const logits = fixture.getFloat32('logits');
const SIZES = [[53, 71], [20, 30], [44, 100], [131, 97]] as const;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('sigmoid matches torch.sigmoid and is stable for large |x|', () => {
  const probs = fixture.getFloat32('probs');
  assert.ok(maxAbsDiff(Float32Array.from(logits, sigmoid), probs) <= 1e-7);
  assert.equal(sigmoid(-1000), 0);
  assert.equal(sigmoid(1000), 1);
  assert.equal(sigmoid(0), 0.5);
});

for (const [h, w] of SIZES) {
  test(`sigmoid + bilinear resize 44x44 -> ${w}x${h} matches torch F.interpolate(align_corners=False)`, () => {
    const maps = logitsToProbabilities(logits, [2, 44, 44], { width: w, height: h });
    const expected = fixture.getFloat32(`resized_${h}x${w}`);
    assert.equal(maps.length, 2);
    for (const [i, map] of maps.entries()) {
      assert.deepEqual([map.width, map.height], [w, h]);
      const diff = maxAbsDiff(map.data, expected.subarray(i * w * h, (i + 1) * w * h));
      assert.ok(diff <= 1e-6, `prompt ${i}: ${diff}`);
    }
  });
}

test('the tensor form agrees with torch on the wasm backend and leaks no tensors', async () => {
  const before = tf.memory().numTensors;
  const input = tf.tensor3d(logits, [2, 44, 44]);
  for (const [h, w] of SIZES) {
    const out = probabilitiesTensor(input, { width: w, height: h });
    assert.deepEqual(out.shape, [2, h, w]);
    const diff = maxAbsDiff(await out.data(), fixture.getFloat32(`resized_${h}x${w}`));
    assert.ok(diff <= 1e-5, `${w}x${h}: ${diff}`);
    out.dispose();
  }
  input.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => probabilitiesTensor(tf.zeros([2, 2]) as unknown as tf.Tensor3D, { width: 1, height: 1 }), ShapeError);
});

test('resizing to the same size is the identity', () => {
  const map = logitsToProbabilities(logits, [2, 44, 44])[0]!;
  assert.deepEqual(resizeProbabilityMap(map, { width: 44, height: 44 }).data, map.data);
});

const tiny: ProbabilityMap = { data: Float32Array.from([0, 0.3, 0.30001, 0.5, 1, 0.2]), width: 3, height: 2 };

test('binaryMask marks p > threshold (strict, default 0.3) as 255', () => {
  assert.equal(DEFAULT_MASK_THRESHOLD, 0.3);
  assert.deepEqual([...binaryMask(tiny).data], [0, 0, 255, 255, 255, 0]);
  assert.deepEqual([...binaryMask(tiny, 0.1).data], [0, 255, 255, 255, 255, 255]);
  assert.equal(binaryMask(tiny).channels, 1);
  assert.throws(() => binaryMask(tiny, 1.5), /threshold: expected a number in \[0, 1\], got 1.5/);
  assert.throws(() => binaryMask({ ...tiny, width: 4 }), ShapeError);
});

test('probability images: grey is round(p*255); colour maps equal matplotlib\'s tables', () => {
  assert.deepEqual([...probabilityImage(tiny).data], [0, 77, 77, 128, 255, 51]);
  const tables = JSON.parse(readFileSync(path.join(DIR, 'colormaps.json'), 'utf8')) as Record<string, number[][]>;
  for (const name of ['viridis', 'inferno', 'magma'] as const) {
    assert.deepEqual([...colormapTable(name)], tables[name]!.flat(), name);
  }
  const viridis = probabilityImage(tiny, 'viridis');
  assert.equal(viridis.channels, 3);
  assert.deepEqual([...viridis.data.subarray(0, 3)], [68, 1, 84]);
  assert.deepEqual([...viridis.data.subarray(12, 15)], [253, 231, 37]);
  assert.deepEqual(COLORMAP_NAMES, ['grey', 'viridis', 'inferno', 'magma']);
  assert.throws(() => probabilityImage(tiny, 'jet' as 'grey'), (e: unknown) => e instanceof InvalidArgumentError && /colormap/.test(e.message));
});

test('overlayMasks tints each prompt\'s foreground in its own colour and leaves the rest', () => {
  const image: RawImage = { data: new Uint8Array(4 * 2 * 3).fill(100), width: 4, height: 2, channels: 3 };
  const a: ProbabilityMap = { data: Float32Array.from([0.9, 0.9, 0, 0, 0, 0, 0, 0]), width: 4, height: 2 };
  const b: ProbabilityMap = { data: Float32Array.from([0, 0.9, 0.9, 0, 0, 0, 0, 0]), width: 4, height: 2 };
  const out = overlayMasks(image, [{ label: 'a', map: a }, { label: 'b', map: b }], { alpha: 0.5 });
  const px = (i: number) => [...out.data.subarray(i * 3, i * 3 + 3)];
  const [ca, cb] = [OVERLAY_COLORS[0]!, OVERLAY_COLORS[1]!];
  assert.deepEqual(px(0), ca.map((c) => Math.round(100 * 0.5 + c * 0.5)));
  assert.deepEqual(px(1), [0, 1, 2].map((k) => Math.round(Math.round(100 * 0.5 + ca[k]! * 0.5) * 0.5 + cb[k]! * 0.5)), 'b over a');
  assert.deepEqual(px(2), cb.map((c) => Math.round(100 * 0.5 + c * 0.5)));
  assert.deepEqual(px(3), [100, 100, 100]);
  assert.deepEqual(image.data, new Uint8Array(24).fill(100), 'input untouched');
  // A 2x1 map over the 4x2 image is resized first: its left half covers the left two columns.
  const half = overlayMasks(image, [{ label: 'h', map: { data: Float32Array.from([1, 0]), width: 2, height: 1 } }]);
  assert.notDeepEqual([...half.data.subarray(0, 3)], [100, 100, 100]);
  assert.deepEqual([...half.data.subarray(9, 12)], [100, 100, 100]);
  assert.throws(() => overlayMasks(image, [], { alpha: 2 }), /options.alpha/);
});

test('the legend draws swatches and dark label text with jimp\'s bundled font', async () => {
  const photo = await loadImage(path.join(DIR, 'astronaut_400x380.png'));
  const font = await loadLegendFont(photo.height);
  assert.equal(font.common.lineHeight > 10, true);
  const empty: ProbabilityMap = { data: new Float32Array(photo.width * photo.height), width: photo.width, height: photo.height };
  const labels = ['a person', 'the flag'];
  const plain = overlayMasks(photo, labels.map((label) => ({ label, map: empty })));
  assert.deepEqual(plain.data, photo.data, 'no foreground and no font: image unchanged');
  const withLegend = overlayMasks(photo, labels.map((label) => ({ label, map: empty })), { font });
  // Legend box: the swatch of the first entry has exactly the first overlay colour.
  const line = font.common.lineHeight;
  const pad = Math.max(2, Math.round(line / 4));
  const swatch = Math.round(line * 0.75);
  const sy = pad + Math.round((line - swatch) / 2) + 1;
  const at = (x: number, y: number) => [...withLegend.data.subarray((y * photo.width + x) * 3, (y * photo.width + x) * 3 + 3)];
  assert.deepEqual(at(pad + 1, sy), [...OVERLAY_COLORS[0]!]);
  assert.deepEqual(at(pad + 1, sy + line + pad), [...OVERLAY_COLORS[1]!]);
  // Text pixels: near-black pixels right of the swatches, on the light box.
  let dark = 0;
  for (let y = 0; y < 2 * (line + pad); y++) {
    for (let x = pad * 2 + swatch; x < pad * 2 + swatch + 60; x++) if (Math.max(...at(x, y)) < 60) dark++;
  }
  assert.ok(dark > 20, `${dark} dark text pixels`);
  assert.deepEqual(at(photo.width - 1, photo.height - 1), [...photo.data.subarray(photo.data.length - 3)]);
});

test('legend \'right\': the image is left untouched and the legend sits in a white strip beside it', async () => {
  const photo = await loadImage(path.join(DIR, 'astronaut_400x380.png'));
  const font = await loadLegendFont(photo.height);
  const half: ProbabilityMap = { data: new Float32Array(photo.width * photo.height).fill(0.9), width: photo.width, height: photo.height };
  const layers = [{ label: 'a person', map: half }, { label: 'the flag', map: half }];
  const bare = overlayMasks(photo, layers);
  const beside = overlayMasks(photo, layers, { font, legend: 'right' });
  const line = font.common.lineHeight;
  const pad = Math.max(2, Math.round(line / 4));
  const swatch = Math.round(line * 0.75);
  assert.ok(beside.width > photo.width + swatch + 2 * pad, `width ${beside.width}`);
  assert.equal(beside.height, photo.height, 'a two-line legend is shorter than the image');
  for (let y = 0; y < photo.height; y++) {
    const row = beside.data.subarray(y * beside.width * 3, (y * beside.width + photo.width) * 3);
    assert.deepEqual(row, bare.data.subarray(y * photo.width * 3, (y + 1) * photo.width * 3), `row ${y} of the overlay is unchanged`);
  }
  const at = (x: number, y: number) => [...beside.data.subarray((y * beside.width + x) * 3, (y * beside.width + x) * 3 + 3)];
  const sy = pad + Math.round((line - swatch) / 2) + 1;
  assert.deepEqual(at(photo.width + pad + 1, sy), [...OVERLAY_COLORS[0]!]);
  assert.deepEqual(at(photo.width + pad + 1, sy + line + pad), [...OVERLAY_COLORS[1]!]);
  assert.deepEqual(at(beside.width - 1, beside.height - 1), [255, 255, 255], 'the strip is white below the legend');
  assert.throws(() => overlayMasks(photo, layers, { font, legend: 'left' as 'right' }), (e) => e instanceof InvalidArgumentError && /options.legend/.test(e.message));
});

test('loadLegendFont picks about 1/30 of the image height, within 12-64 px, and rejects bad heights', async () => {
  assert.equal((await loadLegendFont(100)).info.size, 12);
  assert.equal((await loadLegendFont(1000)).info.size, 32);
  assert.equal((await loadLegendFont(4000)).info.size, 64);
  await assert.rejects(loadLegendFont(0), InvalidArgumentError);
});
