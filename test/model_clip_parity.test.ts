/**
 * CLIPSegModel, CLIPSegTextModel and CLIPSegVisionModel against transformers (fixture outputs_clip.safetensors),
 * each read out of the segmentation checkpoint by `fromPretrained`, on wasm and cpu.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '../src/io/model_files.js';
import { CLIPSegTextModel } from '../src/models/clip_text.js';
import { CLIPSegVisionModel } from '../src/models/clip_vision.js';
import { CLIPSegModel } from '../src/models/clipseg_model.js';
import { clipOutputNames } from '../src/models/output_names.js';
import type { BaseModelOutputWithPooling } from '../src/models/outputs.js';
import { disposeOutput } from '../src/models/tidy.js';
import { assertClose } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';
import { fixturePath, fixtureTensor, readFixture } from './helpers/fixtures.js';
import { countTensors } from './helpers/memory.js';
import { MODEL_CASES } from './helpers/model_fixtures.js';

function compare(named: Record<string, tf.Tensor>, expected: ReturnType<typeof readFixture>, keys: string[]): void {
  for (const key of keys) {
    assert.ok(named[key] !== undefined, `output ${key} is missing`);
    assertClose(named[key]!, expected.getFloat32(key), key, { shape: expected.info(key).shape });
  }
}

function towerNames(prefix: string, out: BaseModelOutputWithPooling): Record<string, tf.Tensor> {
  const named: Record<string, tf.Tensor> = { [`${prefix}.last_hidden_state`]: out.lastHiddenState, [`${prefix}.pooler_output`]: out.poolerOutput };
  out.hiddenStates?.forEach((h, i) => (named[`${prefix}.hidden_states.${i}`] = h));
  out.attentions?.forEach((a, i) => (named[`${prefix}.attentions.${i}`] = a));
  return named;
}

for (const backend of TEST_BACKENDS) {
  describe(`CLIP towers match transformers (${backend})`, () => {
    before(() => useBackend(backend));

    for (const caseName of MODEL_CASES) {
      describe(caseName, () => {
        const dir = fixturePath('model', caseName);
        const expected = readFixture('model', caseName, 'outputs_clip.safetensors');
        const inputsFile = readFixture('model', caseName, 'inputs.safetensors');
        const attentions = expected.keys().some((k) => k.includes('.attentions.'));
        let inputs: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D; pixelValues: tf.Tensor4D };
        before(() => {
          inputs = {
            inputIds: fixtureTensor(inputsFile, 'input_ids') as tf.Tensor2D,
            attentionMask: fixtureTensor(inputsFile, 'attention_mask') as tf.Tensor2D,
            pixelValues: fixtureTensor(inputsFile, 'pixel_values') as tf.Tensor4D,
          };
        });
        after(() => tf.dispose(Object.values(inputs)));

        test('CLIPSegModel: forward with contrastive loss, features', async () => {
          const model = await CLIPSegModel.fromPretrained(dir);
          const start = tf.memory().numTensors;
          const out = model.forward({ ...inputs, returnLoss: true, outputHiddenStates: true, outputAttentions: attentions });
          assert.equal(tf.memory().numTensors - start, countTensors(out));
          compare(clipOutputNames(out), expected, expected.keys().filter((k) => !k.endsWith('_features')));
          disposeOutput(out);
          const text = model.getTextFeatures(inputs);
          const image = model.getImageFeatures(inputs.pixelValues);
          assertClose(text, expected.getFloat32('text_features'), 'text_features');
          assertClose(image, expected.getFloat32('image_features'), 'image_features');
          tf.dispose([text, image]);
          assert.equal(tf.memory().numTensors, start);
          model.dispose();
        });

        test('CLIPSegTextModel and CLIPSegVisionModel on their own', async () => {
          const textModel = await CLIPSegTextModel.fromPretrained(dir);
          const text = textModel.forward({ inputIds: inputs.inputIds, attentionMask: inputs.attentionMask, outputHiddenStates: true, outputAttentions: attentions });
          compare(towerNames('text_model_output', text), expected, expected.keys().filter((k) => k.startsWith('text_model_output.')));
          disposeOutput(text);
          textModel.dispose();

          const visionModel = await CLIPSegVisionModel.fromPretrained(dir);
          const vision = visionModel.forward({ pixelValues: inputs.pixelValues, outputHiddenStates: true, outputAttentions: attentions });
          compare(towerNames('vision_model_output', vision), expected, expected.keys().filter((k) => k.startsWith('vision_model_output.')));
          disposeOutput(vision);
          visionModel.dispose();
        });
      });
    }
  });
}

test('text pooling: the first largest id with the legacy eos_token_id 2, else the first eos_token_id', async () => {
  await useBackend('cpu');
  const model = await CLIPSegTextModel.fromPretrained(fixturePath('model', 'plain_eos'));
  assert.equal(model.config.eos_token_id, 3);
  // Row 0 has eos (3) at position 2 while its largest id (40) is at position 1.
  const ids = [[4, 40, 3, 3]];
  const out = model.forward({ inputIds: ids, outputHiddenStates: true });
  const expected = tf.slice(out.lastHiddenState, [0, 2, 0], [1, 1, -1]).reshape([1, -1]);
  assertClose(out.poolerOutput, expected, 'pooled at the first eos', { atol: 0 });
  tf.dispose([expected]);
  disposeOutput(out);
  model.dispose();
});
