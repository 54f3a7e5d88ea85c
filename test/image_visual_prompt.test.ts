import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';
import { loadImage } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { type RawImage, toRGB } from '../src/processor/image.js';
import { CLIPSegImageProcessor } from '../src/processor/image_processor.js';
import { gaussianBlur, makeVisualPrompt, makeVisualPromptNormalized, maskBoundingBox } from '../src/processor/visual_prompt.js';

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'images');
const fixture = await readSafetensors(path.join(DIR, 'visual_prompt.safetensors'));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function load(name: string) {
  const [, height, width] = fixture.info(`${name}/image`).shape as [number, number, number];
  return { image: { data: fixture.getFloat32(`${name}/image`), width, height }, mask: fixture.getFloat32(`${name}/mask`) };
}

for (const name of ['square', 'wide']) {
  test(`15x15 sigma-3 Gaussian blur equals cv2.GaussianBlur on the ${name} image`, () => {
    const { image } = load(name);
    const diff = maxAbsDiff(gaussianBlur(image), fixture.getFloat32(`${name}/blurred`));
    assert.ok(diff <= 1e-6, `${diff}`);
  });

  test(`makeVisualPromptNormalized equals the original crop_blur_highlight recipe (${name}) to 1e-5`, () => {
    const { image, mask } = load(name);
    const out = makeVisualPromptNormalized(image, mask, { size: 64 });
    const diff = maxAbsDiff(out, fixture.getFloat32(`${name}/prompt`));
    assert.ok(diff <= 1e-5, `${diff}`);
  });
}

test('the prompt keeps the foreground, darkens the background to 10% and pads with zeros', () => {
  // 8x4 image, constant 2 in every channel; foreground = the 2x2 block at x 5-6, y 1-2.
  const w = 8;
  const h = 4;
  const image = { data: new Float32Array(3 * w * h).fill(2), width: w, height: h };
  const mask = new Float32Array(w * h);
  for (const [x, y] of [[5, 1], [6, 1], [5, 2], [6, 2]]) mask[y * w + x] = 1;
  assert.deepEqual(maskBoundingBox(mask, w, h), { x0: 5, x1: 7, y0: 1, y1: 3 });
  // Box 2x2 widened by 10% of 2 = 0.2 per side -> truncated to [4, 7) x [0, 3): 3x3, no padding.
  const out = makeVisualPromptNormalized(image, mask, { size: 3, blurSigma: 0 });
  assert.deepEqual([...out.subarray(0, 9)].map((v) => Math.round(v * 1e6) / 1e6), [0.2, 0.2, 0.2, 0.2, 2, 2, 0.2, 2, 2]);
  // A wide box pads top and bottom with zeros (the dataset mean).
  const wideMask = new Float32Array(w * h);
  for (let x = 0; x < w; x++) wideMask[w + x] = 1;
  const padded = makeVisualPromptNormalized(image, wideMask, { size: 8, blurSigma: 0, context: 0 });
  assert.deepEqual([...padded.subarray(0, 8)], new Array(8).fill(0), 'top padding row');
  assert.ok(padded.subarray(3 * 8, 4 * 8).every((v) => v === 2), 'foreground row');
  // An empty mask crops nothing: the whole image, all background.
  const empty = makeVisualPromptNormalized(image, new Float32Array(w * h), { size: 8, blurSigma: 0 });
  assert.ok(empty.subarray(2 * 8, 6 * 8).every((v) => Math.abs(v - 0.2) < 1e-6));
});

test('makeVisualPrompt on a photo equals the normalised recipe on the processor\'s pixel values', async () => {
  const photo = toRGB(await loadImage(path.join(DIR, 'chelsea_90x60.png')));
  const box = [30, 10, 40, 35] as const;
  const out = makeVisualPrompt(photo, box, { shortSide: null });
  assert.equal(out.length, 3 * 352 * 352);
  const pixels = new CLIPSegImageProcessor({ doResize: false }).preprocess([photo]).data;
  const mask = new Float32Array(90 * 60);
  for (let y = 10; y < 45; y++) mask.fill(1, y * 90 + 30, y * 90 + 70);
  assert.deepEqual(out, makeVisualPromptNormalized({ data: pixels, width: 90, height: 60 }, mask));
  // A mask image gives the same prompt as the equivalent box.
  const maskImage: RawImage = { data: Uint8Array.from(mask, (v) => v * 255), width: 90, height: 60, channels: 1 };
  assert.deepEqual(makeVisualPrompt(photo, maskImage, { shortSide: null }), out);
  // Default: the short side is resized to 352 first.
  const scaled = makeVisualPrompt(photo, box, { size: 96 });
  assert.equal(scaled.length, 3 * 96 * 96);
  assert.ok(scaled.some((v) => v !== 0));
});

test('bad masks, boxes and options are rejected with typed errors', () => {
  const photo: RawImage = { data: new Uint8Array(10 * 8 * 3).fill(50), width: 10, height: 8, channels: 3 };
  assert.throws(() => makeVisualPrompt(photo, [20, 20, 5, 5]), /box: \[20, 20, 5, 5\] covers no pixel of the 10x8 image/);
  assert.throws(() => makeVisualPrompt(photo, { data: new Uint8Array(80), width: 10, height: 8, channels: 1 }), /mask: no foreground pixel/);
  assert.throws(() => makeVisualPrompt(photo, { data: new Uint8Array(20).fill(255), width: 5, height: 4, channels: 1 }), ShapeError);
  assert.throws(() => makeVisualPrompt(photo, [1, 1, 3, 3], { size: 0 }), /options.size/);
  assert.throws(() => makeVisualPrompt(photo, [1, 1, 3, 3], { shortSide: -5 }), /options.shortSide/);
  const image = { data: new Float32Array(3 * 4), width: 2, height: 2 };
  assert.throws(() => makeVisualPromptNormalized(image, Float32Array.from([0, 2, 0, 0])), (e: unknown) => e instanceof InvalidArgumentError && /values must lie in \[0, 1\], got 2 at index 1/.test(e.message));
  assert.throws(() => makeVisualPromptNormalized(image, new Float32Array(3)), ShapeError);
  assert.throws(() => makeVisualPromptNormalized({ ...image, width: 3 }, new Float32Array(6)), ShapeError);
});
