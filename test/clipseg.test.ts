import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.js';
import { ClipSeg, type Segmentation } from '../src/clipseg.js';
import { BackendError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { type SafetensorsFile, readSafetensors } from '../src/io/safetensors.js';
import { loadImage } from '../src/io/image_io.js';
import { toRGBA } from '../src/processor/image.js';
import { resizeProbabilityMap, sigmoid } from '../src/processor/postprocess.js';
import { wasmTrapError } from './helpers/wasm_trap.js';

const FIXTURE = path.join('test', 'fixtures', 'capture');
const MODEL = path.join(FIXTURE, 'model');
const cases = JSON.parse(readFileSync(path.join(FIXTURE, 'cases.json'), 'utf8')) as {
  image: string;
  visual_prompt: string;
  prompts: string[];
  size: number;
};

let seg: ClipSeg;
let text: SafetensorsFile;
let visual: SafetensorsFile;
let baseline: number;

before(async () => {
  await selectBackend('wasm');
  baseline = tf.memory().numTensors;
  seg = await ClipSeg.fromPretrained(MODEL, { backend: 'wasm' });
  text = await readSafetensors(path.join(FIXTURE, 'text.safetensors'));
  visual = await readSafetensors(path.join(FIXTURE, 'visual.safetensors'));
});

after(() => {
  seg?.dispose();
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function row(file: SafetensorsFile, key: string, index: number): Float32Array {
  const all = file.getFloat32(key);
  const n = all.length / file.info(key).shape[0]!;
  return all.slice(index * n, (index + 1) * n);
}

test('segment: logits equal PyTorch (image file, text prompts, one vision pass) within 1e-4', async () => {
  const results = await seg.segment(cases.image, cases.prompts, { returnLogits: true });
  assert.equal(results.length, 3);
  results.forEach((r, i) => {
    assert.equal(r.prompt, cases.prompts[i]);
    assert.equal(r.logitsSize, cases.size);
    const err = maxAbsDiff(r.logits!, row(text, 'logits', i));
    assert.ok(err < 1e-4, `prompt ${i}: max |logit diff| ${err}`);
  });
});

test('segment: probabilities, mask, area and max at the original image size', async () => {
  const image = await loadImage(cases.image);
  const threshold = 0.45;
  const [first] = await seg.segment(cases.image, cases.prompts[0]!, { threshold });
  assert.equal(first!.width, image.width);
  assert.equal(first!.height, image.height);
  const logits = row(text, 'logits', 0);
  const expected = resizeProbabilityMap(
    { data: Float32Array.from(logits, sigmoid), width: cases.size, height: cases.size },
    { width: image.width, height: image.height },
  );
  assert.ok(maxAbsDiff(first!.probabilities, expected.data) < 1e-5);
  let area = 0;
  let max = 0;
  first!.probabilities.forEach((p, k) => {
    assert.equal(first!.mask[k], p > Math.fround(threshold) ? 1 : 0);
    area += first!.mask[k]!;
    max = Math.max(max, p);
  });
  assert.equal(first!.area, area);
  assert.ok(area > 0 && area < first!.mask.length, 'the threshold splits the image');
  assert.equal(first!.maxProbability, max);
  assert.equal(first!.logits, undefined);
});

test('segment: a plain visual prompt matches PyTorch with visual_prompt= (within 1e-4)', async () => {
  const [r] = await seg.segment(cases.image, [{ image: cases.visual_prompt, label: 'coffee' }], { returnLogits: true });
  assert.equal(r!.prompt, 'coffee');
  assert.ok(maxAbsDiff(r!.logits!, visual.getFloat32('logits')) < 1e-4);
});

test('segment: an embedding prompt (Float32Array or tensor) gives the text prompt result', async () => {
  const embedding = row(text, 'conditional_embeddings', 1);
  const asTensor = tf.tensor1d(embedding);
  const [fromArray, fromTensor] = await seg.segment(cases.image, [embedding, { embedding: asTensor, label: 'flag' }], { returnLogits: true });
  asTensor.dispose();
  assert.equal(fromArray!.prompt, 'embedding 0');
  assert.equal(fromTensor!.prompt, 'flag');
  for (const r of [fromArray!, fromTensor!]) assert.ok(maxAbsDiff(r.logits!, row(text, 'logits', 1)) < 1e-4);
});

test('an image given as a path, a Buffer, raw RGB or RGBA pixels, or a tensor gives the same result', async () => {
  const raw = await loadImage(cases.image);
  const tensor = tf.tensor3d(raw.data, [raw.height, raw.width, 3], 'int32');
  const sources = [cases.image, readFileSync(cases.image), raw, toRGBA(raw), tensor];
  const results = await seg.segment(sources, 'a flag');
  tensor.dispose();
  for (const [r] of results.slice(1)) assert.deepEqual(r!.probabilities, results[0]![0]!.probabilities);
});

test('the vision encoder runs once per image, whatever the number of prompts', async () => {
  const original = seg.model.visionActivations.bind(seg.model);
  let calls = 0;
  seg.model.visionActivations = (...args: Parameters<typeof original>) => {
    calls++;
    return original(...args);
  };
  try {
    const byImage = await seg.segment([cases.image, cases.visual_prompt], cases.prompts);
    assert.equal(byImage.length, 2);
    assert.equal(byImage[1]!.length, 3);
    assert.equal(calls, 2);
  } finally {
    seg.model.visionActivations = original;
  }
});

test('a long prompt list is decoded in groups of 8 over one vision pass, each prompt still equal to PyTorch', async () => {
  // 21 prompts: the fixture's three, seven times over, so every group (8, 8 and the last 5) has a reference.
  const prompts = Array.from({ length: 21 }, (_, i) => cases.prompts[i % 3]!);
  const decoder = seg.model.decoder;
  const original = decoder.forward.bind(decoder);
  const groups: number[] = [];
  decoder.forward = (...args: Parameters<typeof original>) => {
    groups.push(args[1].shape[0]!);
    return original(...args);
  };
  const before = tf.memory().numTensors;
  try {
    const results = await seg.segment(cases.image, prompts, { returnLogits: true });
    assert.deepEqual(groups, [8, 8, 5]);
    assert.equal(tf.memory().numTensors, before);
    results.forEach((r, i) => {
      assert.equal(r.prompt, prompts[i]);
      const err = maxAbsDiff(r.logits!, row(text, 'logits', i % 3));
      assert.ok(err < 1e-4, `prompt ${i}: max |logit diff| ${err}`);
    });
  } finally {
    decoder.forward = original;
  }
});

test('a trap inside the wasm backend stops segment and inspect with a BackendError saying where and what to change', async () => {
  const trap = wasmTrapError('Aborted()');
  const { model } = seg;
  const { decoder } = model;
  const [decode, forward, embed] = [decoder.forward, model.forward, model.conditionalEmbeddings];
  const side = `${seg.inputSize}x${seg.inputSize}`;
  const explained = (message: string) => (e: unknown) => e instanceof BackendError && e.cause === trap && e.message === message;
  const trapText = 'the wasm backend failed (Aborted()), most likely out of memory (it has at most 4 GB)';
  const remedy = 'use a native backend (@tensorflow/tfjs-node, or -node-gpu for CUDA GPUs), whose memory is not capped at 4 GB, in a new process (the failed wasm backend stays unusable)';
  const before = tf.memory().numTensors;
  let passes = 0;
  // The second image's decoder pass fails, after allocating as a real pass would.
  decoder.forward = (...args: Parameters<typeof decode>) => {
    if (++passes === 2) {
      tf.fill([8, 4], 0);
      throw trap;
    }
    return decode.apply(decoder, args);
  };
  try {
    await assert.rejects(seg.segment([cases.image, cases.image], cases.prompts), explained(`segmentation stopped at image 2 of 2 (3 prompts): ${trapText} at ${side}; ${remedy}`));
    assert.equal(tf.memory().numTensors, before);
    model.conditionalEmbeddings = () => {
      throw trap;
    };
    await assert.rejects(seg.segment(cases.image, 'a prompt not yet cached'), explained(`segmentation stopped at encoding 1 prompt: ${trapText} at ${side}; ${remedy}`));
    model.forward = () => {
      throw trap;
    };
    await assert.rejects(
      seg.inspect(cases.image, cases.prompts, { capture: ['decoder.layers.*', 'clip.vision_model.embeddings'] }),
      explained(`inspection stopped: ${trapText} capturing 'decoder.layers.*', 'clip.vision_model.embeddings' for 3 prompts at ${side}; capture fewer modules, pass fewer prompts per call or ${remedy}`),
    );
    assert.equal(tf.memory().numTensors, before);
    // Any other error is the model's own and passes through unchanged.
    const other = new RangeError('bad index');
    decoder.forward = () => {
      throw other;
    };
    await assert.rejects(seg.segment(cases.image, cases.prompts), (e) => e === other);
  } finally {
    [decoder.forward, model.forward, model.conditionalEmbeddings] = [decode, forward, embed];
  }
});

test('repeated text prompts reuse cached embeddings; the LRU bound is honoured', async () => {
  const fresh = await ClipSeg.fromPretrained(MODEL, { cacheSize: 2 });
  try {
    await fresh.segment(cases.image, ['a cat', 'a dog']);
    assert.equal(fresh.cacheStats.textEncoderPasses, 2);
    await fresh.segment(cases.image, ['a dog', 'a cat', 'a cat']);
    assert.equal(fresh.cacheStats.textEncoderPasses, 2, 'all three were cache hits');
    await fresh.segment(cases.image, 'a bird');
    assert.equal(fresh.cacheStats.textEncoderPasses, 3);
    assert.equal(fresh.cacheStats.cached, 2);
    await fresh.segment(cases.image, 'a dog');
    assert.equal(fresh.cacheStats.textEncoderPasses, 4, "'a dog' was the least recently used and got evicted");
  } finally {
    fresh.dispose();
  }
});

test('embed returns the text embedding PyTorch computed; mutating it leaves the cache intact', async () => {
  const [first] = await seg.embed(cases.prompts[2]!);
  assert.ok(maxAbsDiff(first!, row(text, 'conditional_embeddings', 2)) < 1e-5);
  first!.fill(0);
  const [again] = await seg.embed(cases.prompts[2]!);
  assert.ok(maxAbsDiff(again!, row(text, 'conditional_embeddings', 2)) < 1e-5);
});

test('concurrent segment calls give the same results as sequential ones and share the cache', async () => {
  const jobs: [string, string[]][] = [
    [cases.image, ['a red flag', 'a helmet']],
    [cases.visual_prompt, ['a helmet', 'a cup']],
    [cases.image, ['a cup']],
    [cases.visual_prompt, ['a red flag', 'a cup', 'a helmet']],
  ];
  const concurrentSeg = await ClipSeg.fromPretrained(MODEL);
  const sequentialSeg = await ClipSeg.fromPretrained(MODEL);
  try {
    const concurrent = await Promise.all(jobs.map(([img, prompts]) => concurrentSeg.segment(img, prompts)));
    const sequential: Segmentation[][] = [];
    for (const [img, prompts] of jobs) sequential.push(await sequentialSeg.segment(img, prompts));
    concurrent.forEach((results, j) =>
      results.forEach((r, i) => {
        const s = sequential[j]![i]!;
        assert.equal(r.prompt, s.prompt);
        assert.deepEqual(r.probabilities, s.probabilities);
        assert.deepEqual(r.mask, s.mask);
      }),
    );
    assert.equal(concurrentSeg.cacheStats.textEncoderPasses, 3, 'three distinct texts, each encoded once');
  } finally {
    concurrentSeg.dispose();
    sequentialSeg.dispose();
  }
});

test('segment and inspect leave no tensors behind; dispose returns to the baseline', async () => {
  const local = await ClipSeg.fromPretrained(MODEL);
  const loaded = tf.memory().numTensors;
  await local.segment(cases.image, ['a cat', { image: cases.visual_prompt, box: [10, 10, 60, 40] }]);
  await local.segment([cases.image, cases.image], 'a cat', { returnLogits: true });
  assert.equal(tf.memory().numTensors, loaded);
  const result = await local.inspect(cases.image, cases.prompts, { capture: ['decoder.layers.*'] });
  const returned = 3 + Object.keys(result.captures).length;
  assert.equal(tf.memory().numTensors, loaded + returned);
  tf.dispose([result.logits, result.pixelValues, result.conditionalEmbeddings, ...Object.values(result.captures)]);
  assert.equal(tf.memory().numTensors, loaded);
  local.dispose();
  local.dispose();
  await assert.rejects(local.segment(cases.image, 'a cat'), InvalidArgumentError);
  assert.equal(tf.memory().numTensors - seg.model.parameters().length, baseline);
});

test('bad arguments are InvalidArgumentError (or ShapeError) naming the argument', async () => {
  const invalid = (pattern: RegExp) => (e: unknown) => e instanceof InvalidArgumentError && pattern.test((e as Error).message);
  for (const threshold of [-0.1, 1.5, Number.NaN, '0.5']) {
    await assert.rejects(seg.segment(cases.image, 'a cat', { threshold: threshold as number }), invalid(/threshold/));
  }
  await assert.rejects(seg.segment(cases.image, []), invalid(/at least one prompt/));
  await assert.rejects(seg.segment(cases.image, [42 as unknown as string]), invalid(/prompts\[0\]/));
  await assert.rejects(seg.segment(cases.image, ['a cat', '  ']), invalid(/prompts\[1\]: expected a non-empty text/));
  await assert.rejects(seg.segment(cases.image, [{ image: cases.image, mask: cases.image, box: [0, 0, 2, 2] }]), invalid(/either mask or box/));
  await assert.rejects(seg.segment([], 'a cat'), invalid(/images/));
  await assert.rejects(seg.segment(cases.image, new Float32Array(5)), ShapeError);
  await assert.rejects(seg.inspect(cases.image, 'a cat', {} as never), invalid(/capture/));
});
