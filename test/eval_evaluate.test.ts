import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Command } from 'commander';
import { registerEval } from '../src/cli/commands/eval.js';
import { formatEvaluation } from '../src/cli/eval.js';
import { BackendError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { type PromptTokenizer, type SegmentationModel, type TaskScore, evaluate } from '../src/eval/evaluate.js';
import { loadModelFolder } from '../src/io/model_files.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { nearestIndices } from '../src/train/sample_pipeline.js';
import { wasmTrapError } from './helpers/wasm_trap.js';

await tf.setBackend('wasm');

const FIXTURES = new URL('./fixtures/phrasecut/', import.meta.url).pathname;
const SIZE = 16;

/** Phrases to token rows: [BOS, one id per character, EOS], small ids for the tiny test vocabularies. */
const tokenizer: PromptTokenizer = {
  encodeBatch: (texts) => {
    const rows = texts.map((t) => [0, ...[...t].slice(0, 10).map((ch) => 3 + (ch.charCodeAt(0) % 190)), 2]);
    const width = Math.max(...rows.map((r) => r.length));
    return {
      input_ids: rows.map((r) => [...r, ...new Array(width - r.length).fill(1)]),
      attention_mask: rows.map((r) => [...r.map(() => 1), ...new Array(width - r.length).fill(0)]),
    };
  },
};

/** A model whose logits are a constant: every pixel gets probability sigmoid(value). */
function constantModel(value: number): SegmentationModel {
  return { forward: ({ pixelValues }) => ({ logits: tf.fill([pixelValues.shape[0], SIZE, SIZE], value) }) };
}

/** Ground truth of the valid test tasks at SIZE x SIZE, from the Python masks, nearest-resized as torch does. */
async function groundTruth(): Promise<Map<string, { paper: Uint8Array; official: Uint8Array }>> {
  const masks = await readSafetensors(path.join(FIXTURES, 'dataset_masks.safetensors'));
  const out = new Map<string, { paper: Uint8Array; official: Uint8Array }>();
  for (const id of ['1006__61', '1006__62']) {
    const full = masks.getBytes(`${id}.clipseg`);
    const ys = nearestIndices(30, SIZE);
    const xs = nearestIndices(40, SIZE);
    out.set(id, { paper: Uint8Array.from({ length: SIZE * SIZE }, (_, k) => full[ys[Math.floor(k / SIZE)] * 40 + xs[k % SIZE]]), official: Uint8Array.from(masks.getBytes(`${id}.official`)) });
  }
  return out;
}

test('paper protocol, constant prediction: hand-derived mIoU, IoU_FG and AP; skips counted; no tensor leak', async () => {
  const gt = await groundTruth();
  const before = tf.memory().numTensors;
  const scores: TaskScore[] = [];
  const r = await evaluate(constantModel(0), FIXTURES, { tokenizer, size: SIZE, batchSize: 2, onTask: (s) => scores.push(s) });
  assert.equal(tf.memory().numTensors, before);
  // p = 0.5 everywhere: at t = 0.3 every pixel is positive, so IoU = P / (1 + S^2) per task.
  const pos = [...gt.values()].map((g) => g.paper.reduce((a, v) => a + v, 0));
  const all = SIZE * SIZE;
  assert.deepEqual(scores, [
    { task_id: '1006__61', image_id: 1006, phrase: 'red square', phrase_type: 'attribute', instances: 1, ann_ids: [61], name: 'square', attributes: ['red'], iou: pos[0]! / (1 + all), pixels: all, target_pixels: pos[0], predicted_pixels: all, intersection_pixels: pos[0] },
    { task_id: '1006__62', image_id: 1006, phrase: 'orange ring', phrase_type: 'attribute', instances: 1, ann_ids: [62], name: 'ring', attributes: ['orange'], iou: pos[1]! / (1 + all), pixels: all, target_pixels: pos[1], predicted_pixels: all, intersection_pixels: pos[1] },
  ]);
  assert.equal(r.samples, 2);
  assert.equal(r.threshold, 0.3);
  assert.ok(Math.abs(r.miou - pos.reduce((a, p) => a + p / (1 + all), 0) / 2) < 1e-12);
  const sum = pos[0]! + pos[1]!;
  assert.ok(Math.abs(r.fgiou - sum / (1 + 2 * all)) < 1e-12);
  // One (recall, precision) point only: Simpson's rule over a single point is 0.
  assert.equal(r.ap, 0);
  assert.deepEqual(r.skipped, { missing_image_file: 1, bad_image_id: 1, image_decode_failed: 1 });
});

test('paper protocol, oracle prediction from the reference masks: IoU = P / (1 + P) per task', async () => {
  const gt = await groundTruth();
  const byPhrase = new Map([['red square', gt.get('1006__61')!.paper], ['orange ring', gt.get('1006__62')!.paper]]);
  const phraseOf = (row: readonly number[]): string => [...byPhrase.keys()].find((p) => tokenizer.encodeBatch([p], { padding: true }).input_ids[0]!.every((v, i) => v === row[i])) as string;
  let lastIds: number[][] = [];
  const oracle: SegmentationModel = {
    forward: ({ inputIds }) => {
      lastIds = inputIds;
      const maps = inputIds.map((row) => Array.from(byPhrase.get(phraseOf(row)) as Uint8Array, (v) => (v ? 20 : -20)));
      return { logits: tf.tensor3d(maps.flat(), [inputIds.length, SIZE, SIZE]) };
    },
  };
  const r = await evaluate(oracle, FIXTURES, { tokenizer, size: SIZE, batchSize: 1, threshold: 0.5 });
  assert.equal(lastIds.length, 1);
  const ious = [...byPhrase.values()].map((m) => {
    const p = m.reduce((a, v) => a + v, 0);
    return p / (1 + p);
  });
  assert.ok(Math.abs(r.miou - (ious[0]! + ious[1]!) / 2) < 1e-12);
  assert.ok(Math.abs(r.fgiou - (gt.get('1006__61')!.paper.reduce((a, v) => a + v, 0) + gt.get('1006__62')!.paper.reduce((a, v) => a + v, 0)) / (1 + [...byPhrase.values()].reduce((a, m) => a + m.reduce((b, v) => b + v, 0), 0))) < 1e-12);
  assert.equal(r.best?.fgiouThreshold, 0.02);
});

test('official protocol, all-foreground prediction: IoU = |GT| / (H W) on the Pillow-rule masks', async () => {
  const gt = await groundTruth();
  const before = tf.memory().numTensors;
  const scores: TaskScore[] = [];
  const r = await evaluate(constantModel(3), FIXTURES, { tokenizer, size: SIZE, protocol: 'official', onTask: (s) => scores.push(s) });
  assert.equal(tf.memory().numTensors, before);
  const areas = [...gt.values()].map((g) => g.official.reduce((a, v) => a + v, 0));
  // Scored at the original 30 x 40: every pixel predicted.
  assert.deepEqual(scores.map((s) => [s.task_id, s.iou, s.pixels, s.target_pixels, s.predicted_pixels, s.intersection_pixels]), [
    ['1006__61', areas[0]! / 1200, 1200, areas[0], 1200, areas[0]],
    ['1006__62', areas[1]! / 1200, 1200, areas[1], 1200, areas[1]],
  ]);
  assert.equal(r.samples, 2);
  assert.ok(Math.abs(r.miou - (areas[0]! + areas[1]!) / 2 / 1200) < 1e-12);
  assert.ok(Math.abs(r.fgiou - (areas[0]! + areas[1]!) / 2400) < 1e-12);
  assert.equal(r.ap, null);
  assert.deepEqual(r.accuracy, { '0.5': 0, '0.6': 0, '0.7': 0, '0.8': 0, '0.9': 0 });
});

test('a real tiny CLIPSeg runs through evaluate; results do not depend on the batch size', async () => {
  const model = await loadModelFolder(new URL('./fixtures/model/narrow352/', import.meta.url).pathname);
  try {
    const before = tf.memory().numTensors;
    const scores: TaskScore[] = [];
    const one = await evaluate(model, FIXTURES, { tokenizer, split: 'train', batchSize: 1, limit: 4, onTask: (s) => scores.push(s) });
    const three = await evaluate(model, FIXTURES, { tokenizer, split: 'train', batchSize: 3, limit: 4 });
    const official: TaskScore[] = [];
    const off = await evaluate(model, FIXTURES, { tokenizer, split: 'train', protocol: 'official', limit: 4, onTask: (s) => official.push(s) });
    assert.equal(tf.memory().numTensors, before);
    // The per-task records are the terms behind the means: mIoU is their mean, IoU_FG (and the official cumulative
    // IoU) their summed intersections over summed unions.
    const sum = (list: TaskScore[], f: (s: TaskScore) => number): number => list.reduce((a, s) => a + f(s), 0);
    const union = (s: TaskScore): number => s.target_pixels + s.predicted_pixels - s.intersection_pixels;
    assert.equal(scores.length, one.samples);
    assert.ok(Math.abs(sum(scores, (s) => s.iou) / scores.length - one.miou) < 1e-12);
    assert.ok(Math.abs(sum(scores, (s) => s.intersection_pixels) / (1 + sum(scores, union)) - one.fgiou) < 1e-12);
    for (const s of scores) assert.ok(Math.abs(s.iou - s.intersection_pixels / (1 + union(s))) < 1e-15);
    assert.equal(official.length, off.samples);
    assert.ok(Math.abs(sum(official, (s) => s.iou) / official.length - off.miou) < 1e-12);
    assert.ok(Math.abs(sum(official, (s) => s.intersection_pixels) / sum(official, union) - off.fgiou) < 1e-12);
    assert.equal(one.samples, 4);
    for (const k of ['miou', 'fgiou', 'ap'] as const) assert.ok(Math.abs((one[k] as number) - (three[k] as number)) < 1e-5, k);
    assert.ok(one.miou >= 0 && one.miou <= 1 && one.fgiou >= 0 && one.fgiou <= 1);
    assert.match(formatEvaluation(one), /PhraseCut train, paper protocol: 4 tasks/);
  } finally {
    model.dispose();
  }
});

test('bad options and wrong logits shapes are refused with typed errors', async () => {
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer, threshold: 0.31 }), /threshold: expected one of the grid values/);
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer, protocol: 'fancy' as 'paper' }), InvalidArgumentError);
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer, batchSize: 0 }), InvalidArgumentError);
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer: {} as PromptTokenizer }), /tokenizer/);
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer, onTask: 'scores.jsonl' as unknown as () => void }), /options\.onTask: expected a function, got string/);
  const before = tf.memory().numTensors;
  await assert.rejects(evaluate(constantModel(0), FIXTURES, { tokenizer, size: 20 }), ShapeError);
  assert.equal(tf.memory().numTensors, before);
  const program = new Command().exitOverride();
  registerEval(program);
  await assert.rejects(
    program.parseAsync(['eval', '--model', 'x', '--data', FIXTURES, '--protocol', 'fancy'], { from: 'user' }),
    /--protocol: expected 'paper' or 'official'/,
  );
  await assert.rejects(program.parseAsync(['eval', '--model', 'x', '--data', FIXTURES, '--threshold', 'high'], { from: 'user' }), /--threshold: expected a number/);
});

test('a trap inside the wasm backend stops evaluation with a BackendError naming the batch and the remedy', async () => {
  /** Allocates, as a real forward would, then throws `error`. */
  const failing = (error: Error): SegmentationModel => ({
    forward: ({ pixelValues }) => {
      tf.fill([pixelValues.shape[0], SIZE, SIZE], 0);
      throw error;
    },
  });
  const trap = wasmTrapError('memory access out of bounds');
  const before = tf.memory().numTensors;
  await assert.rejects(evaluate(failing(trap), FIXTURES, { tokenizer, size: SIZE, batchSize: 2 }), (e) =>
    e instanceof BackendError &&
    e.cause === trap &&
    e.message ===
      'evaluation stopped at tasks 1006__61 to 1006__62: the wasm backend failed (memory access out of bounds), most likely out of memory ' +
        '(it has at most 4 GB) on a batch of 2 images of 16x16; lower the batch size (--batch-size, options.batchSize) and run again ' +
        'in a new process (the failed wasm backend stays unusable)');
  await assert.rejects(evaluate(failing(trap), FIXTURES, { tokenizer, size: SIZE, batchSize: 1 }), /^BackendError: evaluation stopped at task 1006__61: .* on a batch of 1 image of 16x16;/);
  assert.equal(tf.memory().numTensors, before);
  // Any other error is the model's own and passes through unchanged.
  const other = new RangeError('bad index');
  await assert.rejects(evaluate(failing(other), FIXTURES, { tokenizer, size: SIZE }), (e) => e === other);
  assert.equal(tf.memory().numTensors, before);
});
