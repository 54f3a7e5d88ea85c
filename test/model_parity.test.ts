/**
 * CLIPSegForImageSegmentation against transformers 4.57 (fixtures from tools/reference/gen_model.py): every
 * output field, hidden state and attention map within 1e-4, and decoder gradients within 1e-4 relative, for
 * text, image and embedding prompts, on the wasm and cpu backends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelFolder } from '../src/io/model_files.js';
import type { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { segmentationOutputNames } from '../src/models/output_names.js';
import { disposeOutput } from '../src/models/tidy.js';
import { assertClose } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';
import { countTensors } from './helpers/memory.js';
import { disposeInputs, gradientErrors, lossGradients, MODEL_CASES, modeFile, modesOf, segmentationInputs } from './helpers/model_fixtures.js';

const TOLERANCE = 1e-4;

for (const backend of TEST_BACKENDS) {
  describe(`CLIPSegForImageSegmentation matches transformers (${backend})`, () => {
    before(() => useBackend(backend));

    for (const caseName of MODEL_CASES) {
      describe(caseName, () => {
        let model: CLIPSegForImageSegmentation;
        before(async () => {
          model = await loadModelFolder(fixturePath('model', caseName));
        });
        after(() => model.dispose());

        for (const mode of modesOf(caseName)) {
          test(`${mode || 'text'} prompt: outputs, hidden states, attentions, loss and gradients`, (t) => {
            const expected = readFixture('model', caseName, modeFile('outputs', mode));
            const inputs = segmentationInputs(readFixture('model', caseName, modeFile('inputs', mode)));
            const keys = expected.keys().filter((k) => !k.startsWith('grad.'));
            const attentions = keys.some((k) => k.includes('.attentions.'));

            const before = tf.memory().numTensors;
            const out = model.forward({ ...inputs, outputHiddenStates: true, outputAttentions: attentions });
            const named = segmentationOutputNames(out);
            assert.equal(tf.memory().numTensors - before, countTensors(out), 'forward leaves only what it returns');

            const report: string[] = [];
            for (const key of keys) {
              assert.ok(named[key] !== undefined, `output ${key} is missing`);
              const err = assertClose(named[key]!, expected.getFloat32(key), key, { atol: TOLERANCE, shape: expected.info(key).shape });
              report.push(`${key} ${err.toExponential(1)}`);
            }
            disposeOutput(out);

            const { grads } = lossGradients(model, inputs);
            const errors = gradientErrors(grads, expected);
            for (const [key, err] of Object.entries(errors)) {
              assert.ok(err <= TOLERANCE, `${key}: relative gradient error ${err}`);
            }
            report.push(`grad (max relative) ${Math.max(...Object.values(errors)).toExponential(1)}`);
            disposeInputs(inputs);
            assert.equal(tf.memory().numTensors, before - Object.keys(inputs).length, 'no tensors leak');
            t.diagnostic(report.join('; '));
          });
        }
      });
    }
  });
}
