import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ConfigError, InvalidArgumentError } from '../src/errors.js';
import { loadImage } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { RawImage } from '../src/processor/image.js';
import { CLIPSEG_IMAGE_DEFAULTS, CLIPSegImageProcessor } from '../src/processor/image_processor.js';

await tf.setBackend('wasm');

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'images');
const fixture = await readSafetensors(path.join(DIR, 'processor.safetensors'));
const cases = JSON.parse(readFileSync(path.join(DIR, 'processor_cases.json'), 'utf8')) as { name: string; file: string; height: number; width: number }[];
const STD = [0.229, 0.224, 0.225];
/** The CIDAS preprocessor_config.json as published, with the target size swapped in. */
function cidasConfig(height: number, width: number): Record<string, unknown> {
  return {
    crop_size: 352,
    do_center_crop: false,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    feature_extractor_type: 'ViTFeatureExtractor',
    image_mean: [0.485, 0.456, 0.406],
    image_processor_type: 'ViTImageProcessor',
    image_std: [0.229, 0.224, 0.225],
    processor_class: 'CLIPSegProcessor',
    resample: 2,
    rescale_factor: 0.00392156862745098,
    size: { height, width },
  };
}

for (const c of cases) {
  const jpeg = c.file.endsWith('.jpg');
  test(`pixel_values for ${c.file} -> ${c.width}x${c.height} equal HF ViTImageProcessor`, async () => {
    const processor = CLIPSegImageProcessor.fromConfig(cidasConfig(c.height, c.width));
    const { data, shape } = processor.preprocess([await loadImage(path.join(DIR, c.file))]);
    assert.deepEqual(shape, [1, 3, c.height, c.width]);
    assert.deepEqual(fixture.info(c.name).shape, [3, c.height, c.width]);
    const expected = fixture.getFloat32(c.name);
    const plane = c.height * c.width;
    let worst = 0;
    let worstLevels = 0;
    let sumLevels = 0;
    for (let i = 0; i < expected.length; i++) {
      const d = Math.abs(data[i]! - expected[i]!);
      worst = Math.max(worst, d);
      worstLevels = Math.max(worstLevels, d * 255 * STD[Math.floor(i / plane)]!);
      sumLevels += d * 255 * STD[Math.floor(i / plane)]!;
    }
    if (jpeg) {
      // JPEGs decode to Pillow's exact pixels (4:4:4 and 4:2:0 alike), so they meet the PNG bound; reported all the same.
      const mean = sumLevels / expected.length;
      console.log(`${c.file}: largest pixel_values difference ${worst.toExponential(3)} (${worstLevels.toFixed(2)} grey levels, mean ${mean.toFixed(3)})`);
    }
    assert.ok(worst <= 1e-6, `largest difference ${worst}`);
  });
}

test('the 352x352 PNG case is bit-identical with HF', async () => {
  const processor = new CLIPSegImageProcessor();
  const { data } = processor.preprocess([await loadImage(path.join(DIR, 'astronaut_400x380.png'))]);
  assert.deepEqual(data, fixture.getFloat32('astronaut_352'));
});

test('rescale and normalise of every 8-bit value equals HF rescale + normalize bit for bit', () => {
  const table = fixture.getFloat32('normalize_table');
  const processor = new CLIPSegImageProcessor({ doResize: false });
  const img: RawImage = { data: new Uint8Array(256 * 3), width: 256, height: 1, channels: 3 };
  for (let v = 0; v < 256; v++) img.data.fill(v, v * 3, v * 3 + 3);
  assert.deepEqual(processor.preprocess([img]).data, table);
});

test('fromConfig reads int, {height, width} and {shortest_edge} sizes and PIL resample codes', () => {
  assert.deepEqual(CLIPSegImageProcessor.fromConfig({}).options, CLIPSEG_IMAGE_DEFAULTS);
  assert.deepEqual(CLIPSegImageProcessor.fromConfig({ size: 224 }).options.size, { height: 224, width: 224 });
  const se = CLIPSegImageProcessor.fromConfig({ size: { shortest_edge: 50 }, resample: 3, image_mean: 0.5, image_std: [0.5, 0.5, 0.5] });
  assert.deepEqual(se.options.size, { shortestEdge: 50 });
  assert.equal(se.options.resample, 'bicubic');
  assert.deepEqual(se.options.imageMean, [0.5, 0.5, 0.5]);
  const img: RawImage = { data: new Uint8Array(90 * 60 * 3), width: 90, height: 60, channels: 3 };
  // transformers: short side -> 50, long side int(50 * 90 / 60) = 75.
  assert.deepEqual(se.preprocess([img]).shape, [1, 3, 50, 75]);
});

test('fromConfig rejects malformed keys with ConfigError naming the key', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ size: { height: 0, width: 3 } }, /size.height must be a positive integer/],
    [{ size: 'big' }, /size must be an integer/],
    [{ resample: 9 }, /resample must be a PIL code/],
    [{ do_resize: 'yes' }, /do_resize must be a boolean/],
    [{ image_mean: [1, 2] }, /image_mean must be a number or a list of 3 numbers/],
    [{ image_std: [0, 1, 1] }, /imageStd must not contain 0/],
    [{ rescale_factor: '1/255' }, /rescale_factor must be a number/],
  ];
  for (const [config, message] of bad) assert.throws(() => CLIPSegImageProcessor.fromConfig(config), (e: unknown) => e instanceof ConfigError && message.test(e.message));
  assert.throws(() => CLIPSegImageProcessor.fromConfig(null), ConfigError);
  assert.throws(() => CLIPSegImageProcessor.fromConfig([1]), ConfigError);
});

test('batches stack in order, convert grey and RGBA to RGB, and the tensor form frees nothing else', async () => {
  const processor = CLIPSegImageProcessor.fromConfig(cidasConfig(32, 48));
  const grey = await loadImage(path.join(DIR, 'camera_grey_150x130.png'));
  const rgba = await loadImage(path.join(DIR, 'rocket_rgba_120x80.png'));
  const batch = processor.preprocess([grey, rgba]);
  assert.deepEqual(batch.shape, [2, 3, 32, 48]);
  const single = processor.preprocess([rgba]).data;
  assert.deepEqual(batch.data.subarray(3 * 32 * 48), single);
  const before = tf.memory().numTensors;
  const t = processor.preprocessTensor([grey, rgba]);
  assert.equal(tf.memory().numTensors, before + 1);
  assert.deepEqual(t.shape, [2, 3, 32, 48]);
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(await t.data(), batch.data);
  t.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('preprocess rejects empty batches, bad images and mixed output sizes', () => {
  const processor = new CLIPSegImageProcessor();
  assert.throws(() => processor.preprocess([]), InvalidArgumentError);
  assert.throws(() => processor.preprocess([{ data: new Uint8Array(3), width: 2, height: 2, channels: 3 }]), /images\[0\].data: expected 12 bytes/);
  const se = new CLIPSegImageProcessor({ size: { shortestEdge: 10 } });
  const a: RawImage = { data: new Uint8Array(20 * 10 * 3), width: 20, height: 10, channels: 3 };
  const b: RawImage = { data: new Uint8Array(10 * 10 * 3), width: 10, height: 10, channels: 3 };
  assert.throws(() => se.preprocess([a, b]), /images\[1\]: resized to 10x10 but images\[0\] to 20x10/);
});
