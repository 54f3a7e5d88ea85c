/**
 * Behaviour of the model API beyond parity: one image shared by several prompts, skipping unused vision layers,
 * activation capture, parameter listing and trainability, disposal, and the training entry points agreeing with
 * `forward`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelFolder } from '../src/io/model_files.js';
import type { CLIPSegForImageSegmentation, SegmentationInputs } from '../src/models/clipseg_segmentation.js';
import { disposeOutput } from '../src/models/tidy.js';
import { assertClose } from './helpers/assert_close.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';
import { assertNoLeak } from './helpers/memory.js';
import { disposeInputs, segmentationInputs } from './helpers/model_fixtures.js';

describe('CLIPSegForImageSegmentation API', () => {
  let model: CLIPSegForImageSegmentation;
  let inputs: SegmentationInputs;
  before(async () => {
    await useBackend('wasm');
    model = await loadModelFolder(fixturePath('model', 'refined_argmax'));
    inputs = segmentationInputs(readFixture('model', 'refined_argmax', 'inputs.safetensors'));
  });
  after(() => {
    disposeInputs(inputs);
    model.dispose();
  });

  test('one image with N prompts equals the image repeated N times', () => {
    const image = tf.slice(inputs.pixelValues, [0, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
    const repeated = tf.tile(image, [2, 1, 1, 1]) as tf.Tensor4D;
    const shared = assertNoLeak(() => model.forward({ ...inputs, pixelValues: image, outputHiddenStates: true }), 'shared forward');
    const full = model.forward({ ...inputs, pixelValues: repeated, outputHiddenStates: true });
    assert.deepEqual(shared.logits.shape, full.logits.shape);
    assertClose(shared.logits, full.logits, 'logits', { atol: 1e-6 });
    assertClose(shared.loss!, full.loss!, 'loss', { atol: 1e-6 });
    shared.decoderOutput.hiddenStates!.forEach((h, i) => assertClose(h, full.decoderOutput.hiddenStates![i]!, `decoder hidden ${i}`, { atol: 1e-6 }));
    assert.equal(shared.visionModelOutput.lastHiddenState!.shape[0], 1, 'the vision tower ran once');
    disposeOutput(shared);
    disposeOutput(full);
    tf.dispose([image, repeated]);
  });

  test('captures: outputs, inputs and attention weights by glob, in the reference layout', () => {
    const out = assertNoLeak(
      () =>
        model.forward(
          { ...inputs, outputHiddenStates: true, outputAttentions: true },
          { capture: ['clip.vision_model.encoder.layers.1', 'decoder.layers.*.self_attn:attn_weights', 'decoder.transposed_convolution.**', 'decoder.layers.0:input'] },
        ),
      'forward with captures',
    );
    const captures = out.captures!;
    assertClose(captures['clip.vision_model.encoder.layers.1']!, out.visionModelOutput.hiddenStates![2]!, 'layer 1 output', { atol: 0 });
    assertClose(captures['clip.vision_model.encoder.layers.1:input']!, out.visionModelOutput.hiddenStates![1]!, 'layer 1 input', { atol: 0 });
    assertClose(captures['decoder.layers.1.self_attn:attn_weights']!, out.decoderOutput.attentions![1]!, 'decoder attention', { atol: 0 });
    assert.ok(!('decoder.layers.1.self_attn' in captures), 'a pattern with a colon selects only that key');
    // Conv modules are captured as [N, C, H, W]: 4x4 grid of reduce_dim 8, then 8x8x4, 16x16x1 after the transposed convs.
    assert.deepEqual(captures['decoder.transposed_convolution.0']!.shape, [2, 8, 4, 4]);
    assert.deepEqual(captures['decoder.transposed_convolution.2']!.shape, [2, 4, 8, 8]);
    assert.deepEqual(captures['decoder.transposed_convolution.4']!.shape, [2, 1, 16, 16]);
    assertClose(captures['decoder.transposed_convolution.4']!.reshape([2, 16, 16]), out.logits, 'head output', { atol: 0 });
    assert.ok('decoder.transposed_convolution.1' in captures, 'the ReLU modules are hookable too');
    assert.deepEqual(captures['decoder.layers.0:input']!.shape, [2, 17, 8]);
    assert.equal(captures['decoder.layers.0'], undefined);
    disposeOutput(out);
  });

  test('the text prompt path is captured under its module names too', () => {
    const out = model.forward(inputs, { capture: ['clip.text_model.encoder.layers.*.mlp.activation_fn', 'clip.text_projection'] });
    assert.deepEqual(Object.keys(out.captures!).sort(), [
      'clip.text_model.encoder.layers.0.mlp.activation_fn',
      'clip.text_model.encoder.layers.0.mlp.activation_fn:input',
      'clip.text_model.encoder.layers.1.mlp.activation_fn',
      'clip.text_model.encoder.layers.1.mlp.activation_fn:input',
      'clip.text_projection',
      'clip.text_projection:input',
    ]);
    assertClose(out.captures!['clip.text_projection']!, out.conditionalEmbeddings, 'conditional embeddings', { atol: 0 });
    disposeOutput(out);
  });

  test('visionActivations, conditionalEmbeddings and decoder.forward reproduce forward', () => {
    const reference = model.forward({ ...inputs, outputHiddenStates: true });
    const activations = assertNoLeak(() => model.visionActivations(inputs.pixelValues), 'visionActivations');
    model.config.extract_layers.forEach((layer, i) => assertClose(activations[i]!, reference.visionModelOutput.hiddenStates![layer + 1]!, `activation ${layer}`, { atol: 0 }));
    const conditional = model.conditionalEmbeddings({ inputIds: inputs.inputIds!, attentionMask: inputs.attentionMask });
    assertClose(conditional, reference.conditionalEmbeddings, 'conditional embeddings', { atol: 0 });
    const decoded = assertNoLeak(() => model.decoder.forward(activations, conditional, { outputHiddenStates: true }), 'decoder.forward');
    assertClose(decoded.logits, reference.logits, 'logits', { atol: 0 });
    assert.equal(decoded.hiddenStates!.length, 2);
    const given = model.conditionalEmbeddings({ conditionalEmbeddings: conditional });
    assert.notEqual(given, conditional, 'a copy the caller owns');
    assertClose(given, conditional, 'copied embeddings', { atol: 0 });
    const deep = model.visionActivations(inputs.pixelValues, { layers: [1] });
    assertClose(deep[0]!, reference.visionModelOutput.hiddenStates![2]!, 'layer 1', { atol: 0 });
    tf.dispose([...activations, conditional, given, ...deep]);
    disposeOutput(decoded);
    disposeOutput(reference);
  });

  test('namedParameters lists the HF keys, HF shapes and layout kinds of the checkpoint', () => {
    const file = readFixture('model', 'refined_argmax', 'model.safetensors');
    const named = model.namedParameters();
    assert.deepEqual(named.map((p) => p.name).sort(), file.keys().sort());
    for (const p of named) assert.deepEqual(p.hfShape, file.info(p.name).shape, p.name);
    const kind = (name: string) => named.find((p) => p.name === name)!.layout;
    assert.equal(kind('clip.vision_model.encoder.layers.0.self_attn.q_proj.weight'), 'linear');
    assert.equal(kind('clip.vision_model.embeddings.patch_embedding.weight'), 'conv2d');
    assert.equal(kind('decoder.transposed_convolution.0.weight'), 'conv2d');
    assert.equal(kind('decoder.transposed_convolution.2.weight'), 'conv_transpose2d');
    assert.equal(kind('clip.vision_model.pre_layrnorm.weight'), 'identity');
    assert.equal(named[0]!.name, 'clip.logit_scale', 'registration follows the reference module order');
  });

  test('setTrainable selects decoder, all, none or by predicate', () => {
    const trainable = () => model.namedParameters().filter((p) => p.trainable).map((p) => p.name);
    const decoderKeys = model.namedParameters().filter((p) => p.name.startsWith('decoder.')).map((p) => p.name);
    assert.deepEqual(trainable(), decoderKeys);
    model.setTrainable('all');
    assert.equal(trainable().length, model.namedParameters().length);
    assert.ok(model.trainableVariables().every((v) => v.trainable));
    model.setTrainable('none');
    assert.deepEqual(trainable(), []);
    model.setTrainable((key) => key.includes('film'));
    assert.deepEqual(trainable(), ['decoder.film_mul.weight', 'decoder.film_mul.bias', 'decoder.film_add.weight', 'decoder.film_add.bias']);
    model.setTrainable('decoder');
    assert.throws(() => model.setTrainable('clip' as 'all'), /setTrainable: expected 'decoder', 'all', 'none' or a function, got "clip"/);
  });
});

test('two models coexist with distinct variable names, and dispose releases every variable', async () => {
  await useBackend('cpu');
  const start = tf.memory().numTensors;
  const a = await loadModelFolder(fixturePath('model', 'refined_rd12'));
  const b = await loadModelFolder(fixturePath('model', 'refined_rd12'));
  const names = [...a.namedParameters(), ...b.namedParameters()].map((p) => p.variable.name);
  assert.equal(new Set(names).size, names.length);
  assert.equal(tf.memory().numTensors - start, names.length);
  a.dispose();
  b.dispose();
  assert.equal(tf.memory().numTensors, start);
  tf.tidy(() => {
    assert.throws(() => a.forward({ pixelValues: tf.zeros([1, 3, 16, 16]), conditionalEmbeddings: tf.zeros([1, 6]) }), /has no value/);
  });
});

test('computePooled: false skips the vision layers after the deepest extract layer, logits unchanged', async () => {
  await useBackend('wasm');
  // narrow352: extract_layers [0, 1] of a 3-layer vision tower.
  const model = await loadModelFolder(fixturePath('model', 'narrow352'));
  const inputs = segmentationInputs(readFixture('model', 'narrow352', 'inputs.safetensors'));
  const capture = ['clip.vision_model.encoder.layers.*'];
  const full = model.forward(inputs, { capture });
  const lean = assertNoLeak(() => model.forward(inputs, { capture, computePooled: false }), 'lean forward');
  assertClose(lean.logits, full.logits, 'logits', { atol: 0 });
  assertClose(lean.loss!, full.loss!, 'loss', { atol: 0 });
  assert.equal(lean.pooledOutput, undefined);
  assert.equal(lean.visionModelOutput.lastHiddenState, undefined);
  const layersRun = (out: typeof full) => Object.keys(out.captures!).filter((k) => !k.includes(':')).sort();
  assert.deepEqual(layersRun(full), [0, 1, 2].map((i) => `clip.vision_model.encoder.layers.${i}`));
  assert.deepEqual(layersRun(lean), [0, 1].map((i) => `clip.vision_model.encoder.layers.${i}`));
  const withHidden = model.forward({ ...inputs, outputHiddenStates: true }, { computePooled: false });
  assert.equal(withHidden.visionModelOutput.hiddenStates!.length, 4, 'hidden states need every layer');
  disposeOutput(full);
  disposeOutput(lean);
  disposeOutput(withHidden);
  disposeInputs(inputs);
  model.dispose();
});
