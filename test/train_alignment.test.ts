/**
 * The token-alignment loss (`alignment.ts`): its value against a computation by hand from the model's own weights,
 * what it trains, its checkpoint state and exact resume, and its refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { runTrain } from '../src/cli/train.js';
import { InvalidArgumentError, ShapeError, TrainingError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { ALIGNMENT_BIAS_KEY, ALIGNMENT_SCALE_KEY, TokenAlignment } from '../src/train/alignment.js';
import { latestCheckpoint, readCheckpoint } from '../src/train/checkpoint.js';
import { tinyConfig } from '../src/train/presets.js';
import { Rng } from '../src/train/rng.js';
import { SamplePipeline } from '../src/train/sample_pipeline.js';
import { SegmentationTask } from '../src/train/segmentation_task.js';
import { train, type TrainerOptions } from '../src/train/trainer.js';
import { useTrainingSet } from './helpers/training_set.js';

await tf.setBackend('wasm');

const set = useTrainingSet('clipseg-align-', { seed: 6, images: 16, size: 96 });

const RUN: Omit<TrainerOptions, 'outDir'> = { steps: 6, batchSize: 4, accumulate: 1, lr: 3e-3, minLr: 1e-4, seed: 2, checkpointEvery: 3 };

function makeTask(alignment: number | undefined, model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 7 }), fullFinetune = true): SegmentationTask {
  const pipeline = new SamplePipeline(set.dataset, RUN.seed, { size: 64, withVisual: false });
  return new SegmentationTask({ model, pipeline, tokenizer: set.tokenizer, fullFinetune, ...(alignment === undefined ? {} : { alignment }) });
}

function parameter(model: CLIPSegForImageSegmentation, key: string): Float32Array {
  return model.namedParameters().find((p) => p.name === key)!.variable.dataSync() as Float32Array;
}

function randoms(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-scale, scale));
}

test('the alignment loss equals BCE of s * cos(projected token, cond) + b against the label at each token centre, computed by hand', () => {
  const model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 3 });
  const { hidden_size: width, patch_size: patch, layer_norm_eps: eps } = model.config.vision_config;
  const projection = model.config.projection_dim;
  const rng = Rng.fromSeed(21);
  // Norm weights away from their initial 1 and 0, so that the test sees them used.
  const gamma = randoms(rng, width, 2);
  const beta = randoms(rng, width);
  model.clip.visionModel.postLayernorm.weight.variable.assign(tf.tensor1d(gamma));
  model.clip.visionModel.postLayernorm.bias!.variable.assign(tf.tensor1d(beta));
  const weightTensor = model.clip.visualProjection.weight.variable;
  const w = weightTensor.dataSync() as Float32Array; // [width, projection], row-major
  const alignment = new TokenAlignment(model, 0.5);
  const batch = 2;
  const size = 64;
  const grid = size / patch;
  const tokens = 1 + grid * grid;
  const hidden = randoms(rng, batch * tokens * width, 3);
  const cond = randoms(rng, batch * projection);
  const labels = Float32Array.from({ length: batch * size * size }, () => (rng.next() < 0.3 ? 1 : 0));

  const numTensors = tf.memory().numTensors;
  const inputs = [tf.tensor3d(hidden, [batch, tokens, width]), tf.tensor2d(cond, [batch, projection]), tf.tensor3d(labels, [batch, size, size])] as const;
  const loss = alignment.loss(...inputs);
  const got = loss.dataSync()[0]!;
  tf.dispose([loss, ...inputs]);
  assert.equal(tf.memory().numTensors, numTensors, 'the loss leaves no tensors behind');

  let sum = 0;
  for (let b = 0; b < batch; b++) {
    const c = cond.subarray(b * projection, (b + 1) * projection);
    const cNorm = Math.hypot(...c);
    for (let r = 0; r < grid; r++) {
      for (let col = 0; col < grid; col++) {
        const x = hidden.subarray((b * tokens + 1 + r * grid + col) * width, (b * tokens + 2 + r * grid + col) * width);
        const mu = x.reduce((a, v) => a + v, 0) / width;
        const variance = x.reduce((a, v) => a + (v - mu) ** 2, 0) / width;
        const normed = Array.from(x, (v, i) => ((v - mu) / Math.sqrt(variance + eps)) * gamma[i]! + beta[i]!);
        const projected = Array.from({ length: projection }, (_, j) => normed.reduce((a, v, i) => a + v * w[i * projection + j]!, 0));
        const cosine = projected.reduce((a, v, j) => a + v * c[j]!, 0) / (Math.hypot(...projected) * cNorm);
        const logit = 10 * cosine - 5;
        const y = labels[b * size * size + (r * patch + patch / 2) * size + col * patch + patch / 2]!;
        sum += Math.max(logit, 0) - logit * y + Math.log1p(Math.exp(-Math.abs(logit)));
      }
    }
  }
  const expected = (0.5 * sum) / (batch * grid * grid);
  assert.ok(Math.abs(got - expected) < 1e-5 * Math.max(1, expected), `loss ${got}, by hand ${expected}`);
  alignment.dispose();
  model.dispose();
});

test('the alignment loss refuses labels, hidden states or conditionals of the wrong shape, by name', () => {
  const model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 3 });
  const alignment = new TokenAlignment(model, 1);
  const width = model.config.vision_config.hidden_size;
  const projection = model.config.projection_dim;
  // tiny: 8 px patches, so 64 px labels need 1 + 8 * 8 tokens.
  const numTensors = tf.memory().numTensors;
  const cases: [string, [[number, number, number], [number, number], [number, number, number]], RegExp][] = [
    ['labels', [[2, 65, width], [2, projection], [3, 64, 64]], /^labels: expected square maps \[2, S, S\] .*got \[3, 64, 64\]/],
    ['labels', [[2, 65, width], [2, projection], [2, 64, 32]], /^labels: expected square maps/],
    ['hidden', [[2, 50, width], [2, projection], [2, 64, 64]], /^hidden: expected \[2, 65, D\] \(CLS and 8 x 8 patch tokens of 8 px for 64 px labels\), got \[2, 50, /],
    ['cond', [[2, 65, width], [1, projection], [2, 64, 64]], new RegExp(`^cond: expected \\[2, ${projection}\\], got \\[1, ${projection}\\]`)],
  ];
  for (const [name, [h, c, l], pattern] of cases) {
    const inputs = [tf.zeros(h) as tf.Tensor3D, tf.ones(c) as tf.Tensor2D, tf.zeros(l) as tf.Tensor3D] as const;
    assert.throws(() => alignment.loss(...inputs), (e) => e instanceof ShapeError && pattern.test(e.message), name);
    tf.dispose([...inputs]);
  }
  assert.equal(tf.memory().numTensors, numTensors);
  alignment.dispose();
  model.dispose();
});

test('with alignment, full fine-tuning trains the projection, the final norm and s, b; checkpoints hold them and resume is exact', async () => {
  const plain = makeTask(undefined);
  const idle = parameter(plain.model, 'clip.visual_projection.weight').slice();
  await train(plain, { ...RUN, outDir: path.join(set.root, 'plain') });
  assert.deepEqual(parameter(plain.model, 'clip.visual_projection.weight'), idle, 'without alignment (and without visual prompts) the projection gets no gradient');
  plain.model.dispose();

  const numTensors = tf.memory().numTensors;
  const task = makeTask(1);
  assert.ok(task.trainableParameters().has(ALIGNMENT_SCALE_KEY) && task.trainableParameters().has(ALIGNMENT_BIAS_KEY));
  const before = new Map([...task.trainableParameters()].map(([k, v]) => [k, v.dataSync().slice()]));
  const outDir = path.join(set.root, 'aligned');
  const result = await train(task, { ...RUN, outDir });
  for (const key of ['clip.visual_projection.weight', 'clip.vision_model.post_layernorm.weight', 'clip.vision_model.post_layernorm.bias', ALIGNMENT_SCALE_KEY, ALIGNMENT_BIAS_KEY]) {
    const now = task.trainableParameters().get(key)!.dataSync();
    assert.ok(now.some((v, i) => v !== before.get(key)![i]), `${key} moved`);
  }
  const ckpt = await readCheckpoint(result.lastCheckpoint!);
  assert.equal((ckpt.state.task as { alignment: number }).alignment, 1);
  assert.deepEqual(ckpt.params.get(ALIGNMENT_SCALE_KEY)!.data, task.alignment!.scale.dataSync());

  const half = makeTask(1);
  await train(half, { ...RUN, outDir: path.join(set.root, 'half'), stopAt: 3 });
  half.model.dispose();
  half.dispose();
  const resumed = makeTask(1, new CLIPSegForImageSegmentation(tinyConfig(), { seed: 50 }));
  await train(resumed, { ...RUN, outDir: path.join(set.root, 'half'), resume: true });
  for (const [key, v] of task.trainableParameters()) assert.deepEqual(resumed.trainableParameters().get(key)!.dataSync(), v.dataSync(), `resumed: ${key}`);

  const otherWeight = makeTask(0.5);
  await assert.rejects(train(otherWeight, { ...RUN, outDir, resume: true }), (e) => e instanceof TrainingError && /alignment: 1 -> 0\.5/.test(e.message));
  for (const t of [task, resumed, otherWeight]) {
    t.model.dispose();
    t.dispose();
  }
  assert.equal(tf.memory().numTensors, numTensors, 'the tasks and models release every tensor');
});

test('alignment is refused by name without full fine-tuning or with a weight that is not a finite number >= 0', async () => {
  const model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 7 });
  assert.throws(() => makeTask(1, model, false), (e) => e instanceof InvalidArgumentError && /^alignment: .*needs full fine-tuning/.test(e.message));
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
    assert.throws(() => makeTask(bad, model), (e) => e instanceof InvalidArgumentError && /^alignment: expected a finite weight >= 0, got /.test(e.message), String(bad));
  }
  assert.equal(makeTask(0, model).alignment, undefined, 'weight 0 is no alignment term');
  model.dispose();

  const out = path.join(set.root, 'cli-bad');
  await assert.rejects(runTrain({ data: set.data, out, config: 'tiny', alignment: 1, fullFinetune: false }), (e) => e instanceof InvalidArgumentError && /^--alignment: .*--full-finetune/.test(e.message));
  await assert.rejects(runTrain({ data: set.data, out, config: 'tiny', alignment: -2 }), (e) => e instanceof InvalidArgumentError && /^--alignment: expected a number >= 0, got -2/.test(e.message));
  assert.ok(!existsSync(out), 'nothing was written');
});

test('clipseg train --alignment exports a model folder without the alignment scalars', async () => {
  const out = path.join(set.root, 'cli');
  const numTensors = tf.memory().numTensors;
  await runTrain({ data: set.data, out, config: 'tiny', alignment: 1, steps: 2, batchSize: 2, checkpointEvery: 2, progress: false, note: () => undefined });
  assert.equal(tf.memory().numTensors, numTensors, 'runTrain releases the model and the task');
  const keys = (await readSafetensors(path.join(out, 'model.safetensors'))).keys();
  assert.ok(keys.includes('clip.visual_projection.weight'));
  assert.ok(!keys.some((k) => k.startsWith('alignment.')), 'the model folder holds model parameters only');
  const ckpt = await readCheckpoint((await latestCheckpoint(path.join(out, 'checkpoints')))!);
  assert.ok(ckpt.params.has(ALIGNMENT_SCALE_KEY) && ckpt.params.has(ALIGNMENT_BIAS_KEY), 'the checkpoint holds s and b');
});
