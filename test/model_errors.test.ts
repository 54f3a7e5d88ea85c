/** Bad input to the model is a ClipSegError naming the argument, what was expected and what came. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ClipSegError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { loadModelFolder } from '../src/io/model_files.js';
import type { CLIPSegForImageSegmentation, SegmentationInputs } from '../src/models/clipseg_segmentation.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath } from './helpers/fixtures.js';

type ErrorClass = new (...args: never[]) => ClipSegError;

function expectError(fn: () => unknown, type: ErrorClass, pattern: RegExp): void {
  const before = tf.memory().numTensors;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
  assert.equal(tf.memory().numTensors, before, 'a rejected call allocates nothing');
}

describe('CLIPSegForImageSegmentation rejects bad input', () => {
  // refined_argmax: 3 channels, patch 8, max_position_embeddings 12, vocab 100, projection_dim 12, logits 16x16 at 32x32.
  let model: CLIPSegForImageSegmentation;
  const t: Record<string, tf.Tensor> = {};
  let ok: SegmentationInputs;
  before(async () => {
    await useBackend('cpu');
    model = await loadModelFolder(fixturePath('model', 'refined_argmax'));
    t.pixels = tf.zeros([2, 3, 32, 32]);
    t.ids = tf.tensor2d([[98, 5, 99], [98, 7, 99]], [2, 3], 'int32');
    t.embeds = tf.zeros([2, 12]);
    ok = { pixelValues: t.pixels as tf.Tensor4D, inputIds: t.ids as tf.Tensor2D };
  });
  after(() => {
    tf.dispose(Object.values(t));
    model.dispose();
  });

  const pixelCases: [string, number[], string][] = [
    ['not 4-D', [3, 32, 32], '\\[3, 32, 32\\]'],
    ['not 3 channels', [2, 1, 32, 32], '\\[2, 1, 32, 32\\]'],
    ['not square', [2, 3, 32, 24], '\\[2, 3, 32, 24\\]'],
    ['not a multiple of the patch size', [2, 3, 36, 36], '\\[2, 3, 36, 36\\]'],
  ];
  for (const [name, shape, got] of pixelCases) {
    test(`pixelValues ${name}`, () => {
      const pixels = tf.zeros(shape);
      expectError(
        () => model.forward({ ...ok, pixelValues: pixels as tf.Tensor4D }),
        ShapeError,
        new RegExp(`^pixelValues: expected \\[batch, 3, H, W\\] with H = W positive multiples of the patch size 8, got ${got}$`),
      );
      pixels.dispose();
    });
  }

  test('pixelValues that are not a float32 tensor', () => {
    expectError(() => model.forward({ ...ok, pixelValues: [[1]] as unknown as tf.Tensor4D }), InvalidArgumentError, /^pixelValues: expected a float32 tensor .* got an array of length 1$/);
    const ints = tf.zeros([2, 3, 32, 32], 'int32');
    expectError(() => model.forward({ ...ok, pixelValues: ints as tf.Tensor4D }), InvalidArgumentError, /^pixelValues: expected a float32 tensor, got int32$/);
    ints.dispose();
  });

  test('inputIds longer than max_position_embeddings', () => {
    const ids = Array.from({ length: 2 }, () => Array.from({ length: 13 }, () => 5));
    expectError(() => model.forward({ ...ok, inputIds: ids }), ShapeError, /^inputIds: expected \[batch, length\] with .*length <= max_position_embeddings \(12\), got \[2, 13\]$/);
  });

  test('inputIds that are ragged, out of the vocabulary or not integers', () => {
    expectError(() => model.forward({ ...ok, inputIds: [[98, 99], [98]] }), ShapeError, /^inputIds: expected 2 rows of 2 numbers .* got row 1: an array of length 1$/);
    expectError(() => model.forward({ ...ok, inputIds: [[98, 100], [98, 99]] }), InvalidArgumentError, /^inputIds\[0\]\[1\]: expected an integer token id in 0\.\.99, got 100$/);
    expectError(() => model.forward({ ...ok, inputIds: [[98, 1.5], [98, 99]] }), InvalidArgumentError, /^inputIds\[0\]\[1\]: expected an integer token id in 0\.\.99, got 1\.5$/);
    expectError(() => model.forward({ ...ok, inputIds: 'a cat' as unknown as number[][] }), InvalidArgumentError, /^inputIds: expected a \[batch, length\] tensor or array of arrays, got string$/);
  });

  test('an attentionMask of another shape than inputIds', () => {
    expectError(() => model.forward({ ...ok, attentionMask: [[1, 1], [1, 1]] }), ShapeError, /^attentionMask: expected \[2, 3\] \(the shape of inputIds\), got \[2, 2\]$/);
  });

  test('mismatched batch sizes', () => {
    const ids = [[98, 99], [98, 99], [98, 99]];
    expectError(() => model.forward({ ...ok, inputIds: ids }), ShapeError, /^inputIds: expected batch 2 \(one prompt per image\) or any batch with a single image, got batch 3$/);
    const embeds = tf.zeros([3, 12]);
    expectError(() => model.forward({ pixelValues: ok.pixelValues, conditionalEmbeddings: embeds as tf.Tensor2D }), ShapeError, /^conditionalEmbeddings: expected batch 2 .* got batch 3$/);
    embeds.dispose();
  });

  test('no prompt at all', () => {
    expectError(() => model.forward({ pixelValues: ok.pixelValues }), InvalidArgumentError, /^no prompt: pass one of inputIds \(text\), conditionalPixelValues \(image\) or conditionalEmbeddings$/);
    expectError(() => model.conditionalEmbeddings({} as never), InvalidArgumentError, /^no prompt/);
  });

  test('conditionalEmbeddings of the wrong width, and image prompts of the wrong shape', () => {
    const embeds = tf.zeros([2, 8]);
    expectError(() => model.forward({ pixelValues: ok.pixelValues, conditionalEmbeddings: embeds as tf.Tensor2D }), ShapeError, /^conditionalEmbeddings: expected \[batch, 12\] \(projection_dim\), got \[2, 8\]$/);
    embeds.dispose();
    const prompt = tf.zeros([2, 3, 20, 20]);
    expectError(() => model.forward({ pixelValues: ok.pixelValues, conditionalPixelValues: prompt as tf.Tensor4D }), ShapeError, /^conditionalPixelValues: expected \[batch, 3, H, W\] with H and W positive multiples of the patch size 8, got \[2, 3, 20, 20\]$/);
    prompt.dispose();
  });

  test('labels that do not have the logits shape', () => {
    const labels = tf.zeros([2, 32, 32]);
    expectError(() => model.forward({ ...ok, labels: labels as tf.Tensor3D }), ShapeError, /^labels: expected \[2, 16, 16\] \(the logits shape\), got \[2, 32, 32\]$/);
    labels.dispose();
  });

  test('decoder.forward with the wrong activations or embeddings', () => {
    const act = tf.zeros([2, 17, 16]);
    expectError(() => model.decoder.forward([act], t.embeds!), InvalidArgumentError, /^activations: expected 2 tensors \(one per extract layer\), got 1$/);
    const bad = tf.zeros([2, 16, 16]);
    expectError(() => model.decoder.forward([act, bad], t.embeds!), ShapeError, /^activations\[1\]: expected \[1 or 2, 1 \+ g\*g, 16\], all alike, got \[2, 16, 16\]$/);
    expectError(() => model.decoder.forward([act, act], act), ShapeError, /^conditionalEmbeddings: expected \[batch, 12\], got \[2, 17, 16\]$/);
    tf.dispose([act, bad]);
  });

  test('visionActivations with layers outside the tower', () => {
    expectError(() => model.visionActivations(ok.pixelValues, { layers: [3] }), InvalidArgumentError, /^layers: expected a non-empty list of layer indices in 0\.\.2, got \[3\]$/);
  });

  test('capture patterns that are not strings', () => {
    expectError(() => model.forward(ok, { capture: [''] }), InvalidArgumentError, /^capture: expected non-empty glob strings, got ""$/);
  });
});
