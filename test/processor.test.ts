import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { InvalidArgumentError } from '../src/errors.js';
import { loadImage } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { CLIPSegImageProcessor } from '../src/processor/image_processor.js';
import { CLIPSegProcessor, disposeProcessorOutput } from '../src/processor/processor.js';
import { loadProcessorFrom } from '../src/pipeline/sources.js';
import { loadTokenizer } from '../src/io/tokenizer_files.js';

const FIXTURE = path.join('test', 'fixtures', 'capture');
const cases = JSON.parse(readFileSync(path.join(FIXTURE, 'cases.json'), 'utf8')) as {
  image: string;
  visual_prompt: string;
  prompts: string[];
};

before(async () => {
  await tf.setBackend('wasm');
  CLIPSegProcessor.registerLoader(loadProcessorFrom);
});

function assertArrayEqual(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

test('text + images give exactly what the HF processor gave (padding: true)', async () => {
  const processor = await CLIPSegProcessor.fromPretrained(path.join(FIXTURE, 'model'));
  const reference = await readSafetensors(path.join(FIXTURE, 'text.safetensors'));
  const image = await loadImage(cases.image);
  const start = tf.memory().numTensors;
  const out = processor.call({ text: cases.prompts, images: [image, image, image], padding: true });
  assert.deepEqual(out.inputIds!.shape, reference.info('input_ids').shape);
  assertArrayEqual(out.inputIds!.dataSync(), reference.getInt32('input_ids'), 'input_ids');
  assertArrayEqual(out.attentionMask!.dataSync(), reference.getInt32('attention_mask'), 'attention_mask');
  assert.deepEqual(out.pixelValues!.shape, [3, 3, 64, 64]);
  const want = reference.getFloat32('pixel_values');
  const got = out.pixelValues!.dataSync();
  assertArrayEqual(got.subarray(0, want.length), want, 'pixel_values[0]');
  assertArrayEqual(got.subarray(2 * want.length), want, 'pixel_values[2]');
  assert.equal(out.conditionalPixelValues, undefined);
  disposeProcessorOutput(out);
  assert.equal(tf.memory().numTensors, start);
});

test('images + visualPrompt give pixel_values and conditional_pixel_values as HF', async () => {
  const processor = await CLIPSegProcessor.fromPretrained(path.join(FIXTURE, 'model'));
  const reference = await readSafetensors(path.join(FIXTURE, 'visual.safetensors'));
  const out = processor.callArrays({ images: await loadImage(cases.image), visualPrompt: await loadImage(cases.visual_prompt) });
  assertArrayEqual(out.pixelValues!.data, reference.getFloat32('pixel_values'), 'pixel_values');
  assertArrayEqual(out.conditionalPixelValues!.data, reference.getFloat32('conditional_pixel_values'), 'conditional_pixel_values');
  assert.deepEqual(out.conditionalPixelValues!.shape, reference.info('conditional_pixel_values').shape);
  assert.equal(out.inputIds, undefined);
});

test('text alone: HF defaults (no padding), max_length padding and truncation', async () => {
  const processor = new CLIPSegProcessor(await loadTokenizer(), new CLIPSegImageProcessor());
  const single = processor.callArrays({ text: 'a photo of a cat' });
  assert.deepEqual(single.inputIds, [[49406, 320, 1125, 539, 320, 2368, 49407]]);
  assert.deepEqual(single.attentionMask, [[1, 1, 1, 1, 1, 1, 1]]);
  const padded = processor.callArrays({ text: ['a cat', 'a photo of a cat'], padding: 'max_length', maxLength: 10 });
  assert.deepEqual(padded.inputIds![0], [49406, 320, 2368, 49407, 49407, 49407, 49407, 49407, 49407, 49407]);
  assert.deepEqual(padded.attentionMask![0], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  const cut = processor.callArrays({ text: ['a photo of a cat'], truncation: true, maxLength: 4 });
  assert.deepEqual(cut.inputIds, [[49406, 320, 1125, 49407]]);
  assert.equal(single.pixelValues, undefined);
});

test('bad calls are InvalidArgumentError naming the problem', async () => {
  const processor = new CLIPSegProcessor(await loadTokenizer(), new CLIPSegImageProcessor());
  const image = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 as const };
  const expectInvalid = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && pattern.test((e as Error).message));
  };
  expectInvalid(() => processor.callArrays({ text: 'a cat', visualPrompt: image }), /either text or visualPrompt/);
  expectInvalid(() => processor.callArrays({}), /at least one of text, images or visualPrompt/);
  expectInvalid(() => processor.callArrays({ text: ['a cat', 'a photo of a cat'] }), /padding: true/);
  expectInvalid(() => processor.callArrays({ images: [] }), /images: expected at least one item/);
  expectInvalid(() => processor.callArrays({ text: [42 as unknown as string] }), /texts\[0\]/);
  expectInvalid(() => processor.call(null as unknown as object), /inputs/);
  expectInvalid(() => new CLIPSegProcessor({} as never, new CLIPSegImageProcessor()), /tokenizer/);
});
