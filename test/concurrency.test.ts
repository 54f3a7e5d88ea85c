/**
 * Many `segment`, `embed` and `inspect` calls in flight on one model give bit-identical results to the same calls
 * made one after another on a fresh instance: the shared text-embedding cache (cold, warm, and evicting on every
 * call) and the image loading path must not mix up requests. Tensor counts end where they started.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ClipSeg, type Prompt, type Segmentation } from '../src/clipseg.js';
import { useBackend } from './helpers/backends.js';

const MODEL = path.join('test', 'fixtures', 'capture', 'model');
const IMAGES = ['chelsea_90x60.png', 'coffee_160x100.png', 'camera_grey_150x130.png', 'rocket_rgba_120x80.png', 'coffee_q90_444.jpg'].map(
  (f) => path.join('test', 'fixtures', 'images', f),
);
const PHRASES = ['a cat', 'a cup of coffee', 'a camera', 'a rocket', 'the sky', 'a person'];

interface Request {
  image: string | Uint8Array;
  prompts: Prompt[];
  returnLogits: boolean;
}

let reference: ClipSeg;
let embedding: Float32Array;

before(async () => {
  await useBackend('wasm');
  reference = await ClipSeg.fromPretrained(MODEL, { backend: 'wasm' });
  [embedding] = (await reference.embed('a dog')) as [Float32Array];
});

after(() => reference?.dispose());

/** 24 requests: repeated and overlapping text prompts, visual and embedding prompts, paths and bytes, with and without logits. */
function requests(): Request[] {
  return Array.from({ length: 24 }, (_, i) => {
    const file = IMAGES[i % IMAGES.length]!;
    const prompts: Prompt[] = [PHRASES[i % PHRASES.length]!, PHRASES[(i * 7 + 2) % PHRASES.length]!];
    if (i % 5 === 0) prompts.push({ image: IMAGES[(i + 1) % IMAGES.length]!, label: 'support' });
    if (i % 6 === 0) prompts.push({ embedding, label: 'dog' });
    return { image: i % 4 === 0 ? new Uint8Array(readFileSync(file)) : file, prompts, returnLogits: i % 3 === 0 };
  });
}

/** The exact bytes of a typed array view. */
function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function assertSame(got: Segmentation[], want: Segmentation[], where: string): void {
  assert.equal(got.length, want.length, where);
  got.forEach((g, k) => {
    const w = want[k]!;
    assert.equal(g.prompt, w.prompt, `${where} prompt ${k}`);
    assert.deepEqual([g.width, g.height, g.area, g.maxProbability], [w.width, w.height, w.area, w.maxProbability], `${where} prompt ${k}`);
    assert.ok(bytesOf(g.probabilities).equals(bytesOf(w.probabilities)), `${where} prompt ${k}: probabilities differ`);
    assert.ok(bytesOf(g.mask).equals(bytesOf(w.mask)), `${where} prompt ${k}: masks differ`);
    if (w.logits !== undefined) assert.ok(bytesOf(g.logits!).equals(bytesOf(w.logits)), `${where} prompt ${k}: logits differ`);
  });
}

async function sequential(seg: ClipSeg, list: readonly Request[]): Promise<Segmentation[][]> {
  const out: Segmentation[][] = [];
  for (const r of list) out.push(await seg.segment(r.image, r.prompts, { returnLogits: r.returnLogits }));
  return out;
}

for (const cacheSize of [256, 1]) {
  test(`24 concurrent segment calls equal sequential ones (text cache size ${cacheSize}, cold then warm)`, async () => {
    const list = requests();
    const expected = await sequential(reference, list);
    const seg = await ClipSeg.fromPretrained(MODEL, { backend: 'wasm', cacheSize });
    const baseline = tf.memory().numTensors;
    try {
      for (const round of ['cold cache', 'warm cache']) {
        const got = await Promise.all(list.map((r) => seg.segment(r.image, r.prompts, { returnLogits: r.returnLogits })));
        got.forEach((g, i) => assertSame(g, expected[i]!, `${round}, request ${i}`));
      }
      assert.equal(tf.memory().numTensors, baseline, 'concurrent calls left tensors behind');
      assert.ok(seg.cacheStats.cached <= cacheSize);
    } finally {
      seg.dispose();
    }
  });
}

test('the same new prompt requested by 16 calls at once, mixed with embed and inspect calls', async () => {
  const seg = await ClipSeg.fromPretrained(MODEL, { backend: 'wasm' });
  const baseline = tf.memory().numTensors;
  try {
    const image = IMAGES[0]!;
    const [want] = await reference.segment([image], ['a striped cat']);
    const [wantEmbedding] = await reference.embed('a striped cat');
    const wantInspect = await reference.inspect(image, ['a striped cat'], { capture: ['decoder.layers.0'] });
    const wantLogits = await wantInspect.logits.data();
    tf.dispose([wantInspect.logits, wantInspect.pixelValues, wantInspect.conditionalEmbeddings, ...Object.values(wantInspect.captures)]);

    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) {
      calls.push(seg.segment(image, 'a striped cat').then((got) => assertSame(got, want!, `segment ${i}`)));
      if (i % 4 === 0) {
        calls.push(
          seg.embed('a striped cat').then(([got]) => assert.ok(bytesOf(got!).equals(bytesOf(wantEmbedding!)), `embed ${i}`)),
        );
        calls.push(
          seg.inspect(image, ['a striped cat'], { capture: ['decoder.layers.0'] }).then(async (r) => {
            const logits = await r.logits.data();
            tf.dispose([r.logits, r.pixelValues, r.conditionalEmbeddings, ...Object.values(r.captures)]);
            assert.ok(bytesOf(logits).equals(bytesOf(wantLogits)), `inspect ${i}`);
          }),
        );
      }
    }
    await Promise.all(calls);
    assert.equal(tf.memory().numTensors, baseline, 'concurrent calls left tensors behind');
  } finally {
    seg.dispose();
  }
});
