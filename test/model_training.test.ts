/**
 * The training-ready split (vision activations outside the tape, decoder inside), full fine-tuning through
 * `forward`, optimisers, and the BCE loss, against transformers' gradients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { BATCHED_ATTENTION_MAX_TOKENS } from '../src/layers/attention.js';
import { loadModelFolder } from '../src/io/model_files.js';
import type { CLIPSegForImageSegmentation, SegmentationInputs } from '../src/models/clipseg_segmentation.js';
import { tfjsToHf } from '../src/models/layout.js';
import { bceWithLogits } from '../src/models/losses.js';
import { assertClose } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';
import { disposeInputs, gradientErrors, segmentationInputs } from './helpers/model_fixtures.js';

const CASE = 'refined_argmax';
/** The real geometry (352 px in 16 px patches: 485 tokens) at narrow widths. */
const WIDE_CASE = 'narrow352';

/** Every parameter's gradient with the whole model in the tape against transformers' (relative error <= 1e-4). */
function assertFullGradients(model: CLIPSegForImageSegmentation, inputs: SegmentationInputs, caseName: string): void {
  const start = tf.memory().numTensors;
  model.setTrainable('all');
  try {
    const params = model.parameters();
    const { value, grads } = tf.variableGrads(() => model.forward(inputs).loss!, params.map((p) => p.variable));
    const expected = readFixture('model', caseName, 'outputs_full_grads.safetensors');
    assertClose(value, expected.getFloat32('loss'), 'loss', { atol: 1e-5 });
    const hfGrads: Record<string, Float32Array> = {};
    for (const p of params) {
      const g = grads[p.variable.name];
      if (g !== undefined) hfGrads[`grad.${p.key}`] = tfjsToHf(p.key, p.shape, g.dataSync() as Float32Array).data;
    }
    const errors = gradientErrors(hfGrads, expected);
    assert.ok(Object.keys(errors).some((k) => k.startsWith('grad.clip.vision_model.embeddings.patch_embedding')));
    assert.ok(Object.keys(errors).some((k) => k.startsWith('grad.clip.text_model.embeddings.token_embedding')));
    for (const [key, err] of Object.entries(errors)) assert.ok(err <= 1e-4, `${key}: relative error ${err}`);
    tf.dispose([value, ...Object.values(grads)]);
  } finally {
    model.setTrainable('decoder');
  }
  assert.equal(tf.memory().numTensors, start);
}

for (const backend of TEST_BACKENDS) {
  describe(`training on ${backend}`, () => {
    let model: CLIPSegForImageSegmentation;
    let inputs: SegmentationInputs;
    before(async () => {
      await useBackend(backend);
      model = await loadModelFolder(fixturePath('model', CASE));
      inputs = segmentationInputs(readFixture('model', CASE, 'inputs.safetensors'));
    });
    after(() => {
      disposeInputs(inputs);
      model.dispose();
    });

    test('decoder gradients from precomputed activations and embeddings equal transformers', () => {
      const start = tf.memory().numTensors;
      const activations = model.visionActivations(inputs.pixelValues);
      const conditional = model.conditionalEmbeddings({ inputIds: inputs.inputIds!, attentionMask: inputs.attentionMask });
      const decoderParams = model.parameters().filter((p) => p.key.startsWith('decoder.'));
      assert.deepEqual(
        model.parameters().filter((p) => p.trainable).map((p) => p.key),
        decoderParams.map((p) => p.key),
        'CLIP is frozen by default',
      );
      const { value, grads } = tf.variableGrads(
        () => bceWithLogits(model.decoder.forward(activations, conditional).logits, inputs.labels!),
        decoderParams.map((p) => p.variable),
      );
      const expected = readFixture('model', CASE, 'outputs.safetensors');
      assertClose(value, expected.getFloat32('loss'), 'loss', { atol: 1e-5 });
      const hfGrads: Record<string, Float32Array> = {};
      for (const p of decoderParams) hfGrads[`grad.${p.key}`] = tfjsToHf(p.key, p.shape, grads[p.variable.name]!.dataSync() as Float32Array).data;
      for (const [key, err] of Object.entries(gradientErrors(hfGrads, expected))) assert.ok(err <= 1e-4, `${key}: ${err}`);
      tf.dispose([value, ...Object.values(grads), ...activations, conditional]);
      assert.equal(tf.memory().numTensors, start);
    });

    test('full fine-tuning: forward inside the tape gives every CLIP and decoder gradient', () => {
      assertFullGradients(model, inputs, CASE);
    });

    test('full fine-tuning at 485 tokens (each vision and decoder head on its own path) equals transformers', async () => {
      const wide = await loadModelFolder(fixturePath('model', WIDE_CASE));
      const wideInputs = segmentationInputs(readFixture('model', WIDE_CASE, 'inputs.safetensors'));
      try {
        const grid = wideInputs.pixelValues.shape[2]! / wide.config.vision_config.patch_size;
        assert.ok(grid * grid + 1 > BATCHED_ATTENTION_MAX_TOKENS, `${grid * grid + 1} tokens`);
        assertFullGradients(wide, wideInputs, WIDE_CASE);
      } finally {
        disposeInputs(wideInputs);
        wide.dispose();
      }
    });

    test('an optimiser step moves only the trainable (decoder) variables', () => {
      const snapshot = new Map(model.parameters().map((p) => [p.key, Float32Array.from(p.variable.dataSync() as Float32Array)]));
      const optimizer = tf.train.sgd(0.1);
      const cost = optimizer.minimize(() => model.forward(inputs, { computePooled: false }).loss!, true, model.trainableVariables());
      assert.ok(cost !== null && Number.isFinite(cost.dataSync()[0]));
      tf.dispose(cost!);
      optimizer.dispose();
      let moved = 0;
      for (const p of model.parameters()) {
        const changed = !tf.util.arraysEqual(p.variable.dataSync() as Float32Array, snapshot.get(p.key)!);
        if (p.key.startsWith('clip.')) assert.equal(changed, false, `${p.key} is frozen`);
        else if (changed) moved++;
        p.assign(snapshot.get(p.key)!);
      }
      assert.ok(moved > 20, `${moved} decoder tensors moved`);
    });
  });
}

test('bceWithLogits equals the hand-computed BCEWithLogitsLoss mean and checks shapes', () => {
  const logits = tf.tensor1d([0, 2, -3, 40]);
  const labels = tf.tensor1d([1, 0, 1, 1]);
  const expected = (Math.log(2) + (2 + Math.log1p(Math.exp(-2))) + (3 + Math.log1p(Math.exp(-3))) + Math.log1p(Math.exp(-40))) / 4;
  assertClose(bceWithLogits(logits, labels), [expected], 'bce', { atol: 1e-6 });
  assert.throws(() => bceWithLogits(logits, tf.tensor1d([1, 0])), /labels: expected the logits' shape \[4\], got \[2\]/);
  tf.dispose([logits, labels]);
});
