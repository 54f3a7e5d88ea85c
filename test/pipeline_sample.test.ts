import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { DatasetError, InvalidArgumentError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { RawImage } from '../src/processor/image.js';
import { PhraseCutDataset } from '../src/train/phrasecut.js';
import { Rng } from '../src/train/rng.js';
import {
  IMAGENET_MEAN, IMAGENET_STD, SamplePipeline, type SampleSource, collate, findCrop, nearestIndices, resizeBilinearAlignCorners,
} from '../src/train/sample_pipeline.js';
import { PROMPT_TEMPLATES, applyTemplate } from '../src/train/templates.js';

const FIXTURES = new URL('./fixtures/phrasecut/', import.meta.url).pathname;

test('bilinear align_corners resize matches torch F.interpolate', async () => {
  const ref = await readSafetensors(path.join(FIXTURES, 'resize', 'resize.safetensors'));
  for (let i = 0; i < 4; i++) {
    const input = ref.getFloat32(`bilinear.${i}.input`);
    const want = ref.getFloat32(`bilinear.${i}.output`);
    const [, h, w] = ref.info(`bilinear.${i}.input`).shape as [number, number, number];
    const [, oh, ow] = ref.info(`bilinear.${i}.output`).shape as [number, number, number];
    const got = resizeBilinearAlignCorners(input, 3, h, w, oh, ow);
    let worst = 0;
    for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]));
    assert.ok(worst < 1e-3, `case ${i}: max |diff| ${worst} on a 0..255 scale`);
  }
});

test("nearest indices match torch's default interpolation exactly", async () => {
  const ref = await readSafetensors(path.join(FIXTURES, 'resize', 'resize.safetensors'));
  for (const key of ref.keys().filter((k) => k.startsWith('nearest.'))) {
    const [, nIn, nOut] = key.split('.').map(Number) as [number, number, number];
    assert.deepEqual([...nearestIndices(nIn, nOut)], [...new Int32Array(Uint8Array.from(ref.getBytes(key)).buffer)], key);
  }
});

test('findCrop: first crop above the coverage threshold, else the best-covered crop', () => {
  // 4 x 10 image, side 4: offsets x = 0..6. Target: columns 8-9 of every row (8 pixels = 20% of 40).
  const mask = new Uint8Array(40);
  for (let y = 0; y < 4; y++) mask[y * 10 + 8] = mask[y * 10 + 9] = 1;
  const accepted = findCrop(mask, 4, 10, 4, Rng.fromSeed(1), 50, 0.05);
  assert.ok(accepted.accepted && accepted.x >= 5, JSON.stringify(accepted));
  // Nothing can exceed 50% of the full area: the best crop (x = 6, all 8 pixels) is returned, not accepted.
  const fallback = findCrop(mask, 4, 10, 4, Rng.fromSeed(1), 200, 0.5);
  assert.deepEqual(fallback, { y: 0, x: 6, accepted: false });
  // A square image has a single crop.
  assert.deepEqual(findCrop(new Uint8Array(9), 3, 3, 3, Rng.fromSeed(2), 50, 0.05), { y: 0, x: 0, accepted: false });
});

/** An in-memory source: image i is a flat colour with a target block; phrases repeat in pairs. */
function memorySource(n: number, h = 12, w = 18, broken = new Set<number>()): SampleSource {
  const tasks = Array.from({ length: n }, (_, i) => ({ taskId: `t${i}`, phrase: `phrase ${Math.floor(i / 2)}` }));
  const groups = new Map<string, number[]>();
  tasks.forEach((t, i) => groups.set(t.phrase, [...(groups.get(t.phrase) ?? []), i]));
  return {
    tasks,
    phraseGroups: () => groups,
    loadSample: async (i) => {
      if (broken.has(i)) return null;
      const data = new Uint8Array(h * w * 3).map((_, k) => (k * 7 + i * 31) % 256);
      const mask = new Uint8Array(h * w);
      for (let y = 2; y < 7; y++) for (let x = 3 + (i % 5); x < 9 + (i % 5); x++) mask[y * w + x] = 1;
      const image: RawImage = { data, width: w, height: h, channels: 3 };
      return { image, mask };
    },
  };
}

test('a sample is a pure function of seed and position, in any call order; no tensors are created', async () => {
  const before = tf.memory().numTensors;
  const source = memorySource(10);
  const a = new SamplePipeline(source, 7, { size: 24 });
  const b = new SamplePipeline(source, 7, { size: 24 });
  const forward = [];
  for (let p = 0; p < 25; p++) forward.push(await a.sample(p));
  for (let p = 24; p >= 0; p--) assert.deepEqual(await b.sample(p), forward[p], `position ${p}`);
  const other = await new SamplePipeline(source, 8, { size: 24 }).sample(3);
  assert.notDeepEqual(other, forward[3]);
  // Each epoch visits every task once.
  assert.deepEqual(forward.slice(0, 10).map((s) => s.index).sort((x, y) => x - y), [...Array(10).keys()]);
  assert.equal(tf.memory().numTensors, before);
});

test('paper defaults: shapes, normalisation, templates, ~20% negatives with empty labels, text weights', async () => {
  const source = memorySource(40);
  const pipe = new SamplePipeline(source, 3, { size: 16 });
  const prompts = new Set(PROMPT_TEMPLATES);
  let negatives = 0;
  const n = 400;
  for (let p = 0; p < n; p++) {
    const s = await pipe.sample(p);
    assert.equal(s.pixelValues.length, 3 * 16 * 16);
    assert.equal(s.label.length, 16 * 16);
    assert.ok(s.label.every((v) => v === 0 || v === 1));
    assert.ok([...prompts].some((t) => applyTemplate(t, s.phrase) === s.prompt), s.prompt);
    for (let c = 0; c < 3; c++) {
      const lo = (0 - (IMAGENET_MEAN[c] as number)) / (IMAGENET_STD[c] as number) - 1e-5;
      const hi = (1 - (IMAGENET_MEAN[c] as number)) / (IMAGENET_STD[c] as number) + 1e-5;
      for (let i = c * 256; i < (c + 1) * 256; i++) assert.ok(s.pixelValues[i] >= lo && s.pixelValues[i] <= hi);
    }
    if (s.negative) {
      negatives++;
      assert.ok(s.label.every((v) => v === 0));
      assert.notEqual(s.phrase, source.tasks[s.index]?.phrase);
    } else {
      assert.equal(s.phrase, source.tasks[s.index]?.phrase);
      assert.ok(s.label.some((v) => v === 1));
    }
    // Every phrase occurs twice here, so a support always exists.
    assert.equal(s.supportPixelValues?.length, 3 * 16 * 16);
    assert.ok(s.textWeight >= 0 && s.textWeight < 0.5);
  }
  // Binomial(400, 0.2): mean 80, sd 8.
  assert.ok(negatives > 50 && negatives < 110, `negatives ${negatives}`);
});

test('unique phrases get no support and text weight 1; PC mode uses the raw phrase and no negatives', async () => {
  const source = memorySource(6);
  const unique: SampleSource = { ...source, tasks: source.tasks.map((t, i) => ({ ...t, phrase: `only ${i}` })), phraseGroups: () => new Map(source.tasks.map((_, i) => [`only ${i}`, [i]])) };
  const s = await new SamplePipeline(unique, 1, { size: 8, negativeProbability: 0 }).sample(0);
  assert.equal(s.supportPixelValues, undefined);
  assert.equal(s.textWeight, 1);
  const pc = new SamplePipeline(source, 1, { size: 8, negativeProbability: 0, templates: 'none', withVisual: false, order: 'sequential' });
  for (let p = 0; p < 12; p++) {
    const t = await pc.sample(p);
    assert.equal(t.index, p % 6);
    assert.equal(t.prompt, t.phrase);
    assert.equal(t.negative, false);
    assert.equal(t.supportPixelValues, undefined);
  }
});

test('without crop the whole image is squashed: label = nearest-resized mask', async () => {
  const source = memorySource(3, 10, 30);
  const s = await new SamplePipeline(source, 1, { size: 12, crop: false, negativeProbability: 0, withVisual: false }).sample(0);
  const loaded = await source.loadSample(s.index);
  const ys = nearestIndices(10, 12);
  const xs = nearestIndices(30, 12);
  const want = Array.from({ length: 144 }, (_, k) => loaded?.mask[ys[Math.floor(k / 12)] * 30 + xs[k % 12]]);
  assert.deepEqual([...s.label], want);
});

test('broken tasks are replaced by the next usable one; an unusable set raises DatasetError', async () => {
  const pipe = new SamplePipeline(memorySource(4, 12, 18, new Set([1, 2])), 5, { size: 8, order: 'sequential' });
  assert.equal((await pipe.sample(1)).index, 3);
  await assert.rejects(new SamplePipeline(memorySource(2, 12, 18, new Set([0, 1])), 5, { size: 8 }).sample(0), DatasetError);
});

test('batches collate samples at consecutive positions; bad options are refused', async () => {
  const pipe = new SamplePipeline(memorySource(8), 9, { size: 8 });
  const batch = await pipe.batch(2, 3);
  const parts = [await pipe.sample(6), await pipe.sample(7), await pipe.sample(8)];
  assert.deepEqual(batch, collate(parts, 8));
  assert.equal(batch.pixelValues.length, 3 * 3 * 64);
  assert.deepEqual(batch.supportValid, [true, true, true]);
  assert.throws(() => new SamplePipeline(memorySource(2), 1, { negativeProbability: 2 }), InvalidArgumentError);
  assert.throws(() => new SamplePipeline(memorySource(2), 1.5), /seed/);
  await assert.rejects(pipe.batch(0, 0), InvalidArgumentError);
});

test('on the PhraseCut fixture: the wrong-size image is skipped, samples carry the right task', async () => {
  const ds = await PhraseCutDataset.open(FIXTURES, { split: 'train' });
  try {
    const pipe = new SamplePipeline(ds, 2, { size: 32, order: 'sequential', negativeProbability: 0 });
    const ids = [];
    for (let p = 0; p < ds.length; p++) ids.push((await pipe.sample(p)).taskId);
    assert.ok(!ids.includes('1009__91'));
    assert.equal(ds.summary().skipped.image_size_mismatch, 1);
    const red = await pipe.sample(ds.tasks.findIndex((t) => t.taskId === '1001__11'));
    assert.equal(red.phrase, 'red square');
    assert.ok(red.supportPixelValues !== undefined);
  } finally {
    await ds.close();
  }
});

/** Pictures whose tasks carry PhraseCut phrase structures, as `PhraseCutDataset` lists them. */
function structuredSource(): SampleSource {
  const tasks = [
    { imageId: 1, phrase: 'red circle', name: 'circle', attributes: ['red'] },
    { imageId: 1, phrase: 'blue square', name: 'square', attributes: ['blue'] },
    { imageId: 2, phrase: 'red star', name: 'star', attributes: ['red'] },
    { imageId: 2, phrase: 'blue circle', name: 'circle', attributes: ['blue'] },
    { imageId: 3, phrase: 'red square left of green star', name: 'square', attributes: ['red'] },
    { imageId: 3, phrase: 'large green triangle', name: 'triangle', attributes: ['large', 'green'] },
    { imageId: 4, phrase: 'circle', name: 'circle', attributes: [] },
    // The phrase says "chairs", the structure's name "chair": the name counts as named in the picture.
    { imageId: 5, phrase: 'wooden chairs', name: 'chair', attributes: ['wooden'] },
    { imageId: 6, phrase: 'wooden chair', name: 'chair', attributes: ['wooden'] },
    { imageId: 6, phrase: 'wooden table', name: 'table', attributes: ['wooden'] },
  ].map((t, i) => ({ ...t, taskId: `${t.imageId}__${i}` }));
  const base = memorySource(tasks.length);
  const groups = new Map(tasks.map((t, i) => [t.phrase, [i]]));
  return { tasks, phraseGroups: () => groups, loadSample: base.loadSample };
}

test("hard negatives share an attribute with the task's phrase and name nothing in its picture, by hand", async () => {
  const options = { size: 8, negativeProbability: 1, templates: 'none', withVisual: false, order: 'sequential' } as const;
  const hard = new SamplePipeline(structuredSource(), 3, { ...options, negatives: 'hard' });
  const random = new SamplePipeline(structuredSource(), 3, options);
  const samples = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((p) => hard.sample(p)));
  assert.ok(samples.every((s) => s.negative && s.label.every((v) => v === 0)));
  // Picture 1 has a circle and a square: of the red phrases only "red star" names neither. Picture 2 has a star and
  // a circle, so "red square left of green star" (named a square) is the one for its red star, and "blue square" for
  // its blue circle; picture 3 mentions a star in a relation, so only "red circle" is left for its red square.
  assert.equal(samples[0]!.phrase, 'red star');
  assert.equal(samples[2]!.phrase, 'red square left of green star');
  assert.equal(samples[3]!.phrase, 'blue square');
  assert.equal(samples[4]!.phrase, 'red circle');
  for (let seed = 0; seed < 8; seed++) {
    const other = new SamplePipeline(structuredSource(), seed, { ...options, negatives: 'hard' });
    assert.equal((await other.sample(7)).phrase, 'wooden table', `seed ${seed}: "wooden chair" names what "wooden chairs" shows`);
  }
  // No blue phrase names something absent from picture 1, no green or large one from picture 3, and "circle" has
  // no attribute: these fall back to the random draw, the same one the 'random' pipeline makes.
  for (const p of [1, 5, 6]) {
    const fallback = await random.sample(p);
    assert.equal(samples[p]!.phrase, fallback.phrase, `position ${p}`);
    assert.notEqual(samples[p]!.phrase, structuredSource().tasks[p]!.phrase);
  }
  assert.deepEqual(await hard.sample(4), samples[4], 'a pure function of seed and position');
  assert.throws(() => new SamplePipeline(structuredSource(), 3, { negatives: 'easy' as 'hard' }), /negatives: expected 'random' or 'hard', got easy/);
});

test('PhraseCutDataset lists each task with its phrase structure\'s name and attributes', async () => {
  const ds = await PhraseCutDataset.open(FIXTURES, { split: 'test' });
  try {
    assert.deepEqual(ds.tasks.map((t) => [t.phrase, t.name, t.attributes]), [
      ['red square', 'square', ['red']],
      ['orange ring', 'ring', ['orange']],
      ['broken picture', 'picture', ['broken']],
    ]);
  } finally {
    await ds.close();
  }
});
