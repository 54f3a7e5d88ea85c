import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseInferenceSize, inferenceSizes } from '../scripts/demo_inference_size.js';
import { InvalidArgumentError } from '../src/errors.js';

test('the default candidates are the last stage size and two larger ones; a list is taken as given', () => {
  assert.deepEqual(inferenceSizes(undefined, 224, 8), [224, 256, 288]);
  assert.deepEqual(inferenceSizes(undefined, 128, 16), [128, 160, 192]);
  assert.deepEqual(inferenceSizes('256', 224, 8), [256]);
  assert.deepEqual(inferenceSizes('288,224', 224, 8), [288, 224]);
});

test('inference sizes that are not distinct positive multiples of the patch size are refused by name', () => {
  const cases: [string, RegExp][] = [
    ['x', /^--inference-size: expected an integer, got 'x'$/],
    ['224,', /^--inference-size: expected an integer, got ''$/],
    ['230', /^--inference-size: expected positive multiples of the patch size 8, got '230'$/],
    ['0', /^--inference-size: expected positive multiples of the patch size 8, got '0'$/],
    ['-8', /^--inference-size: expected positive multiples of the patch size 8, got '-8'$/],
    ['224,224', /^--inference-size: expected each size once, got '224,224'$/],
  ];
  for (const [option, message] of cases) {
    assert.throws(() => inferenceSizes(option, 224, 8), (e) => e instanceof InvalidArgumentError && message.test(e.message), option);
  }
});

test('the chosen size has the best validation mIoU, the first listed on a tie', () => {
  assert.equal(chooseInferenceSize([{ size: 224, miou: 0.676 }, { size: 256, miou: 0.685 }, { size: 288, miou: 0.684 }]), 256);
  assert.equal(chooseInferenceSize([{ size: 224, miou: 0.7 }, { size: 256, miou: 0.69 }]), 224);
  assert.equal(chooseInferenceSize([{ size: 224, miou: 0.5 }, { size: 256, miou: 0.5 }]), 224);
  assert.equal(chooseInferenceSize([{ size: 288, miou: 0.5 }, { size: 256, miou: 0.5 }]), 288);
  assert.throws(() => chooseInferenceSize([]), (e) => e instanceof InvalidArgumentError && /got none$/.test(e.message));
});
