/**
 * Soak: SOAK_CALLS (default 200) `segment` calls on one small model after a warm-up, with rotating images and
 * prompts and a text cache small enough to evict all the time. The live tensor count and bytes must end where
 * they started, and the process's resident memory may grow by at most RSS_BOUND_MIB over the run.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { ClipSeg } from '../src/clipseg.js';
import { loadImage } from '../src/io/image_io.js';
import { useBackend } from './helpers/backends.js';

const CALLS = Number(process.env.SOAK_CALLS ?? 200);
const WARMUP = 20;
const RSS_BOUND_MIB = 24;

const MODEL = path.join('test', 'fixtures', 'capture', 'model');
const IMAGES = ['chelsea_90x60.png', 'coffee_160x100.png', 'camera_grey_150x130.png', 'rocket_rgba_120x80.png'].map((f) =>
  path.join('test', 'fixtures', 'images', f),
);
const PHRASES = ['a cat', 'a cup of coffee', 'a camera', 'a rocket', 'the sky', 'a person', 'grass', 'a table', 'a window'];

// A full collection before each reading, so the numbers measure what is still referenced, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function residentMiB(): number {
  collect();
  return process.memoryUsage().rss / 2 ** 20;
}

test(`soak: ${CALLS} segment calls keep tensors constant and RSS within ${RSS_BOUND_MIB} MiB`, async (t) => {
  await useBackend('wasm');
  const seg = await ClipSeg.fromPretrained(MODEL, { backend: 'wasm', cacheSize: 4 });
  const visual = await loadImage(IMAGES[1]!);
  try {
    const call = async (i: number): Promise<void> => {
      const prompts = [PHRASES[i % PHRASES.length]!, PHRASES[(i * 5 + 1) % PHRASES.length]!];
      // Every seventh call mixes in a visual prompt, every eleventh takes raw bytes rather than a path.
      const image = i % 11 === 0 ? await readFile(IMAGES[i % IMAGES.length]!) : IMAGES[i % IMAGES.length]!;
      const results = await seg.segment(image, i % 7 === 0 ? [...prompts, { image: visual, label: 'coffee' }] : prompts, { returnLogits: i % 3 === 0 });
      assert.equal(results.length, i % 7 === 0 ? 3 : 2);
    };
    for (let i = 0; i < WARMUP; i++) await call(i);
    const tensors = tf.memory();
    const start = residentMiB();
    let peak = start;
    for (let i = 0; i < CALLS; i++) {
      await call(WARMUP + i);
      if (i % 20 === 19) peak = Math.max(peak, residentMiB());
    }
    const end = residentMiB();
    assert.equal(tf.memory().numTensors, tensors.numTensors, 'live tensors changed over the soak');
    assert.equal(tf.memory().numBytes, tensors.numBytes, 'tensor bytes changed over the soak');
    const growth = end - start;
    t.diagnostic(`RSS after warm-up ${start.toFixed(1)} MiB, after ${CALLS} calls ${end.toFixed(1)} MiB (growth ${growth.toFixed(1)}), peak ${peak.toFixed(1)} MiB`);
    assert.ok(growth < RSS_BOUND_MIB, `RSS grew by ${growth.toFixed(1)} MiB (from ${start.toFixed(1)} to ${end.toFixed(1)}, peak ${peak.toFixed(1)})`);
    assert.ok(seg.cacheStats.cached <= 4, 'the text cache exceeded its size');
  } finally {
    seg.dispose();
  }
});
