/**
 * Train and evaluate from code: a synthetic PhraseCut-format set, the `tiny` architecture trained from scratch with
 * the loop's own pieces (pipeline, task, AdamW loop), then the paper's evaluation on the test split.
 *
 *   npx tsx examples/train_from_code.ts [OUT]
 *
 * Sixty steps show the loop running and the loss falling; useful masks take thousands (`npm run train:demo`).
 * `runTrain` does all of this in one call (it is what `clipseg train` runs); the pieces are shown here because a
 * variant (another loss, another sampler, your own `TrainingTask`) replaces one of them.
 * In your own project import from 'clipseg-tfjs' and 'clipseg-tfjs/train' instead of '../src/...'.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CLIPSegForImageSegmentation, loadTokenizer, selectBackend } from '../src/index.js';
import { evaluate, makeSynthetic, PhraseCutDataset, SamplePipeline, SegmentationTask, tinyConfig, train } from '../src/train/index.js';

const out = process.argv[2] ?? 'out/train-example';
await selectBackend('wasm');

const data = path.join(out, 'data');
await makeSynthetic({ out: data, seed: 1, images: 120, size: 128 });

const model = new CLIPSegForImageSegmentation(tinyConfig(), { seed: 0 });
const dataset = await PhraseCutDataset.open(data, { split: 'train' });
const tokenizer = await loadTokenizer();
try {
  // Text prompts only, whole images squashed to the model's 64 px, 20 % negatives (the recipe's default).
  const pipeline = new SamplePipeline(dataset, 0, { size: 64, withVisual: false, crop: false, templates: 'none' });
  const task = new SegmentationTask({ model, pipeline, tokenizer, fullFinetune: true, loss: 'bce+dice' });
  const result = await train(task, {
    outDir: path.join(out, 'run'),
    steps: 60,
    batchSize: 8,
    accumulate: 1,
    lr: 3e-3,
    minLr: 1e-4,
    warmupSteps: 5,
    seed: 0,
    checkpointEvery: 30,
    onStep: (r) => {
      if (r.step % 10 === 0) console.log(`step ${r.step}: loss ${r.loss.toFixed(4)}, lr ${r.lr.toExponential(2)}`);
    },
  });
  console.log(`trained ${result.steps} steps; last checkpoint ${result.lastCheckpoint}`);

  const scores = await evaluate(model, data, { tokenizer, split: 'test', size: 64 });
  console.log(`test split: mIoU ${scores.miou.toFixed(3)}, IoU_FG ${scores.fgiou.toFixed(3)}, AP ${scores.ap?.toFixed(3)} over ${scores.samples} tasks`);
} finally {
  await dataset.close();
  model.dispose();
  console.log(`tensors left: ${tf.memory().numTensors}`);
}
