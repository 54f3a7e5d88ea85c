/**
 * CLIPSeg training end to end on a small synthetic PhraseCut set with the `tiny` preset (the CI smoke run):
 * the loss falls, runs repeat bit for bit, resume is exact, decoder-only training leaves CLIP untouched, the
 * feature cache matches uncached training within float16 tolerance and is keyed to the model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { FeatureCache, modelFingerprint } from '../src/train/feature_cache.js';
import { tinyConfig } from '../src/train/presets.js';
import { SamplePipeline, type PipelineOptions } from '../src/train/sample_pipeline.js';
import { SegmentationTask } from '../src/train/segmentation_task.js';
import { softDiceLoss, type SegmentationLoss } from '../src/train/losses.js';
import { bceWithLogits } from '../src/models/losses.js';
import { train, type TrainerOptions } from '../src/train/trainer.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { InvalidArgumentError, TrainingError } from '../src/errors.js';
import { useTrainingSet } from './helpers/training_set.js';

await tf.setBackend('wasm');

const set = useTrainingSet('clipseg-train-seg-', { seed: 3, images: 24, size: 96 });

const RUN: Omit<TrainerOptions, 'outDir'> = { steps: 16, batchSize: 4, accumulate: 1, lr: 3e-3, minLr: 1e-4, warmupSteps: 1, seed: 5, checkpointEvery: 8 };
const TEXT_ONLY: Partial<PipelineOptions> = { size: 64, withVisual: false };

function makeTask(options: {
  fullFinetune: boolean;
  pipeline?: Partial<PipelineOptions>;
  cache?: FeatureCache;
  model?: CLIPSegForImageSegmentation;
  loss?: SegmentationLoss;
  freeze?: string[];
}): SegmentationTask {
  const model = options.model ?? new CLIPSegForImageSegmentation(tinyConfig(), { seed: 11 });
  const pipeline = new SamplePipeline(set.dataset, RUN.seed, { ...TEXT_ONLY, ...options.pipeline });
  return new SegmentationTask({
    model,
    pipeline,
    tokenizer: set.tokenizer,
    fullFinetune: options.fullFinetune,
    featureCache: options.cache,
    ...(options.loss ? { loss: options.loss } : {}),
    ...(options.freeze ? { freeze: options.freeze } : {}),
  });
}

function values(model: CLIPSegForImageSegmentation, prefix = ''): Map<string, Float32Array> {
  return new Map(model.namedParameters().filter((p) => p.name.startsWith(prefix)).map((p) => [p.name, p.variable.dataSync() as Float32Array]));
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

test('full fine-tuning of the tiny preset: the loss falls, the same seed repeats bit for bit, and resume is exact', async () => {
  const a = makeTask({ fullFinetune: true });
  const numTensors = tf.memory().numTensors;
  const result = await train(a, { ...RUN, outDir: path.join(set.root, 'a') });
  assert.equal(tf.memory().numTensors, numTensors, 'training leaves only the model variables');
  const losses = result.history.map((r) => r.loss);
  assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.05, `loss falls: ${losses.map((l) => l.toFixed(3)).join(' ')}`);

  const b = makeTask({ fullFinetune: true });
  await train(b, { ...RUN, outDir: path.join(set.root, 'b') });
  const va = values(a.model);
  for (const [key, v] of values(b.model)) assert.deepEqual(v, va.get(key), `same seed: ${key}`);

  const c = makeTask({ fullFinetune: true });
  await train(c, { ...RUN, outDir: path.join(set.root, 'c'), stopAt: 8 });
  c.model.dispose();
  // A fresh process: a model with other initial values; everything must come from the checkpoint.
  const resumed = makeTask({ fullFinetune: true, model: new CLIPSegForImageSegmentation(tinyConfig(), { seed: 99 }) });
  const rest = await train(resumed, { ...RUN, outDir: path.join(set.root, 'c'), resume: true });
  assert.equal(rest.startStep, 8);
  for (const [key, v] of values(resumed.model)) assert.deepEqual(v, va.get(key), `resumed: ${key}`);
  assert.deepEqual(rest.history.map((r) => r.loss), losses, 'the log of the resumed run equals the straight run');
  for (const t of [a, b, resumed]) t.model.dispose();
});

test('decoder-only training with visual mixing: CLIP is untouched and checkpoints hold decoder parameters only', async () => {
  const task = makeTask({ fullFinetune: false, pipeline: { withVisual: true } });
  const clipBefore = values(task.model, 'clip.');
  const decoderBefore = values(task.model, 'decoder.');
  const outDir = path.join(set.root, 'decoder');
  const numTensors = tf.memory().numTensors;
  const result = await train(task, { ...RUN, steps: 4, checkpointEvery: 4, outDir });
  assert.equal(tf.memory().numTensors, numTensors);
  for (const [key, v] of values(task.model, 'clip.')) assert.deepEqual(v, clipBefore.get(key), `frozen: ${key}`);
  const changed = [...values(task.model, 'decoder.')].filter(([key, v]) => v.some((x, i) => x !== decoderBefore.get(key)![i]));
  assert.ok(changed.length > 0.8 * decoderBefore.size, `most decoder parameters moved (${changed.length} of ${decoderBefore.size})`);
  const ckpt = await readCheckpoint(result.lastCheckpoint!);
  assert.ok([...ckpt.params.keys()].every((k) => k.startsWith('decoder.')));
  assert.equal(ckpt.params.size, decoderBefore.size);
  assert.equal((ckpt.state.task as { fullFinetune: boolean }).fullFinetune, false);
  task.model.dispose();
});

test('frozen parameters stay at their initial values, are left out of checkpoints, and must match the resumed run', async () => {
  const freeze = ['clip.text_model.encoder.layers.*.self_attn.[qk]_proj.*', 'decoder.film_add.**'];
  // '[' is no glob syntax: the first pattern matches nothing and is refused, naming the option and the pattern.
  assert.throws(
    () => makeTask({ fullFinetune: true, freeze }),
    (e) => e instanceof InvalidArgumentError && /^freeze: '/.test(e.message) && e.message.includes(freeze[0]!),
  );
  assert.throws(() => makeTask({ fullFinetune: true, freeze: 'decoder.**' as unknown as string[] }), (e) => e instanceof InvalidArgumentError && /^freeze: expected a list of glob patterns, got string/.test(e.message));
  for (const bad of [[''], [3 as unknown as string]]) {
    assert.throws(() => makeTask({ fullFinetune: true, freeze: bad }), (e) => e instanceof InvalidArgumentError && /^freeze: expected non-empty glob strings, got /.test(e.message));
  }
  const patterns = ['clip.text_model.encoder.layers.*.self_attn.q_proj.*', 'clip.text_model.encoder.layers.*.self_attn.k_proj.*', 'decoder.film_add.**'];
  const task = makeTask({ fullFinetune: true, freeze: patterns });
  const layers = tinyConfig().text_config.num_hidden_layers;
  // Per text layer: q_proj and k_proj, weight and bias each; film_add: weight and bias.
  const frozenKeys = task.model.parameters().filter((p) => !p.trainable).map((p) => p.key).sort();
  assert.equal(frozenKeys.length, 4 * layers + 2, frozenKeys.join(', '));
  assert.ok(frozenKeys.every((k) => /self_attn\.[qk]_proj\.|^decoder\.film_add\./.test(k)), frozenKeys.join(', '));
  assert.deepEqual([...task.trainableParameters().keys()].filter((k) => frozenKeys.includes(k)), []);
  const before = values(task.model);
  const outDir = path.join(set.root, 'frozen');
  const numTensors = tf.memory().numTensors;
  const result = await train(task, { ...RUN, steps: 8, checkpointEvery: 4, outDir, stopAt: 4 });
  assert.equal(tf.memory().numTensors, numTensors, 'training with frozen parameters leaves only the model variables');
  const movedKeys = [...values(task.model)].filter(([key, v]) => v.some((x, i) => x !== before.get(key)![i])).map(([key]) => key);
  for (const key of frozenKeys) assert.ok(!movedKeys.includes(key), `frozen: ${key}`);
  const moved = movedKeys.length;
  assert.ok(moved > 0.8 * (before.size - frozenKeys.length), `most other parameters moved (${moved} of ${before.size - frozenKeys.length})`);
  const ckpt = await readCheckpoint(result.lastCheckpoint!);
  assert.deepEqual([...ckpt.params.keys()].filter((k) => frozenKeys.includes(k)), []);
  assert.equal(ckpt.params.size, before.size - frozenKeys.length);
  assert.deepEqual((ckpt.state.task as { freeze: string[] }).freeze, patterns);
  const unfrozen = makeTask({ fullFinetune: true, model: task.model });
  await assert.rejects(
    train(unfrozen, { ...RUN, steps: 8, checkpointEvery: 4, outDir, resume: true }),
    (e) => e instanceof TrainingError && /freeze/.test(e.message),
  );
  task.model.dispose();
});

test('resuming with another data set or image size is refused', async () => {
  const task = makeTask({ fullFinetune: false });
  const outDir = path.join(set.root, 'mismatch');
  await train(task, { ...RUN, steps: 2, checkpointEvery: 2, outDir, stopAt: 2 });
  const other = makeTask({ fullFinetune: false, pipeline: { size: 128 }, model: task.model });
  await assert.rejects(
    train(other, { ...RUN, steps: 2, checkpointEvery: 2, outDir, resume: true }),
    (e) => e instanceof TrainingError && /imageSize/.test(e.message) && /64/.test(e.message) && /128/.test(e.message),
  );
  task.model.dispose();
});

test('the bce+dice loss is the BCE plus the soft Dice of the same logits, and resuming under another loss is refused', async () => {
  const bce = makeTask({ fullFinetune: false });
  const both = makeTask({ fullFinetune: false, loss: 'bce+dice', model: bce.model });
  const a = await bce.microBatch(0, 4);
  const b = await both.microBatch(0, 4);
  const plain = tf.tidy(() => a.loss().dataSync()[0]!);
  const combined = tf.tidy(() => b.loss().dataSync()[0]!);
  a.dispose();
  b.dispose();
  const batch = await bce.pipeline.batch(0, 4);
  const logits = tf.tidy(() => {
    const t = tf.tensor4d(batch.pixelValues, [4, 3, 64, 64]);
    const tokens = set.tokenizer.encodeBatch(batch.prompts, { padding: true });
    return bce.model.forward({ pixelValues: t, inputIds: tokens.input_ids, attentionMask: tokens.attention_mask }, { computePooled: false }).logits;
  });
  const labels = tf.tensor3d(batch.labels, [4, 64, 64]);
  const dice = tf.tidy(() => softDiceLoss(logits, labels).dataSync()[0]!);
  const reference = tf.tidy(() => bceWithLogits(logits, labels).dataSync()[0]!);
  tf.dispose([logits, labels]);
  assert.ok(Math.abs(plain - reference) < 1e-5, `bce ${plain} vs ${reference}`);
  assert.ok(dice > 0.5 && dice < 1, `an untrained model's Dice loss on sparse masks is large: ${dice}`);
  assert.ok(Math.abs(combined - (plain + dice)) < 1e-5, `bce+dice ${combined} vs ${plain} + ${dice}`);

  const outDir = path.join(set.root, 'loss-mismatch');
  const first = await train(both, { ...RUN, steps: 2, checkpointEvery: 2, outDir, stopAt: 2 });
  assert.equal((await readCheckpoint(first.lastCheckpoint!)).state.task?.['loss' as never], 'bce+dice');
  await assert.rejects(
    train(bce, { ...RUN, steps: 2, checkpointEvery: 2, outDir, resume: true }),
    (e) => e instanceof TrainingError && /loss/.test(e.message) && /bce\+dice/.test(e.message),
  );
  bce.model.dispose();
});

test('the feature cache reproduces uncached losses within float16 tolerance and is never shared across models', async () => {
  const uncached = makeTask({ fullFinetune: false });
  const plain = await train(uncached, { ...RUN, steps: 6, outDir: path.join(set.root, 'plain') });

  const cacheDir = path.join(set.root, 'cache');
  const model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 11 });
  const cache = await FeatureCache.open(cacheDir, model);
  const cached = makeTask({ fullFinetune: false, cache, model });
  const first = await train(cached, { ...RUN, steps: 6, outDir: path.join(set.root, 'cached') });
  // One lookup per distinct image of each micro-batch (samples showing the same pixels share one).
  const lookups = cache.stats.hits + cache.stats.misses;
  assert.ok(lookups > 0 && lookups <= 6 * RUN.batchSize, `lookups: ${lookups}`);
  plain.history.forEach((r, i) => {
    const diff = Math.abs(r.loss - first.history[i]!.loss);
    assert.ok(diff < 2e-3 * Math.max(1, r.loss), `step ${r.step}: uncached ${r.loss} vs cached ${first.history[i]!.loss}`);
  });

  // A second run over the same samples reads every activation from disk and gives the same numbers bit for bit.
  const again = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 11 });
  const cacheAgain = await FeatureCache.open(cacheDir, again);
  assert.equal(cacheAgain.fingerprint, cache.fingerprint);
  const rerun = await train(makeTask({ fullFinetune: false, cache: cacheAgain, model: again }), { ...RUN, steps: 6, outDir: path.join(set.root, 'cached-again') });
  assert.equal(cacheAgain.stats.misses, 0);
  assert.equal(cacheAgain.stats.hits, lookups);
  assert.deepEqual(rerun.history.map((r) => r.loss), first.history.map((r) => r.loss));

  // Another model (other vision weights) gets its own fingerprint and computes everything afresh.
  const otherModel = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 12 });
  assert.notEqual(modelFingerprint(otherModel), cache.fingerprint);
  const otherCache = await FeatureCache.open(cacheDir, otherModel);
  await train(makeTask({ fullFinetune: false, cache: otherCache, model: otherModel }), { ...RUN, steps: 2, outDir: path.join(set.root, 'other') });
  assert.equal(otherCache.stats.hits, 0);
  assert.ok(otherCache.stats.misses > 0);
  for (const m of [uncached.model, model, again, otherModel]) m.dispose();
});

test('phrases of one un-augmented image share a vision pass and give the same loss as separate passes', async () => {
  const task = makeTask({ fullFinetune: true, pipeline: { crop: false, order: 'sequential', negativeProbability: 0 } });
  const batch = await task.pipeline.batch(0, 6);
  const images = new Set(batch.taskIds.map((id) => id.split('__')[0]));
  assert.ok(images.size < 6, `consecutive tasks repeat images: ${batch.taskIds.join(', ')}`);
  const numTensors = tf.memory().numTensors;
  const visionBatches: number[] = [];
  const original = task.model.visionActivations.bind(task.model);
  task.model.visionActivations = (pixels, options) => {
    visionBatches.push(pixels.shape[0]);
    return original(pixels, options);
  };
  const micro = await task.microBatch(0, 6);
  // loss() runs inside the trainer's gradient tape, which disposes its intermediates; a tidy does the same here.
  const sharedLoss = tf.tidy(() => micro.loss().dataSync()[0]!);
  micro.dispose();
  assert.deepEqual(visionBatches, [images.size], 'one vision row per distinct image');
  assert.equal(tf.memory().numTensors, numTensors);
  const encoded = set.tokenizer.encodeBatch(batch.prompts, { padding: true });
  const separate = tf.tidy(() =>
    task.model.forward({
      pixelValues: tf.tensor4d(batch.pixelValues, [6, 3, 64, 64]),
      inputIds: encoded.input_ids,
      attentionMask: encoded.attention_mask,
      labels: tf.tensor3d(batch.labels, [6, 64, 64]),
    }).loss!.dataSync()[0]!,
  );
  assert.ok(Math.abs(sharedLoss - separate) < 1e-5, `shared ${sharedLoss} vs separate ${separate}`);
  task.model.dispose();
});
