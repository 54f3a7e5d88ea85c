/**
 * Memory discipline of every public API, on wasm and on cpu: model forward, processor calls, `segment` (text,
 * visual and embedding prompts, several images, failing inputs), `embed`, `inspect`, evaluation and training
 * steps leave `tf.memory().numTensors` and `numBytes` where they were once the caller has disposed what the call
 * returned. Each backend's model is loaded fresh, and disposing it must free every tensor it created.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ClipSeg } from '../src/clipseg.js';
import { runTrain } from '../src/cli/train.js';
import { ClipSegError } from '../src/errors.js';
import { evaluate } from '../src/eval/evaluate.js';
import { loadImage } from '../src/io/image_io.js';
import { disposeOutput } from '../src/models/tidy.js';
import { disposeProcessorOutput } from '../src/processor/processor.js';
import { makeSynthetic } from '../src/train/synthetic.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';

const MODEL = path.join('test', 'fixtures', 'capture', 'model');
const IMAGE = path.join('test', 'fixtures', 'images', 'chelsea_90x60.png');
const OTHER_IMAGE = path.join('test', 'fixtures', 'images', 'coffee_160x100.png');
const PHRASECUT = path.join('test', 'fixtures', 'phrasecut');

const scratch = await mkdtemp(path.join(tmpdir(), 'clipseg-leaks-'));
after(() => rm(scratch, { recursive: true, force: true }));

interface Usage {
  numTensors: number;
  numBytes: number;
}

const usage = (): Usage => {
  const { numTensors, numBytes } = tf.memory();
  return { numTensors, numBytes };
};

/** Runs `fn`, disposes what it returned via `release`, and asserts tensor count and bytes are unchanged. */
async function assertNoGrowth<T>(name: string, fn: () => Promise<T> | T, release: (value: T) => void = () => undefined): Promise<T> {
  const before = usage();
  const value = await fn();
  release(value);
  assert.deepEqual(usage(), before, `${name}: tensors or bytes left behind`);
  return value;
}

/** As `assertNoGrowth`, for a call that must fail with a typed error. */
async function assertNoGrowthOnError(name: string, fn: () => Promise<unknown>): Promise<void> {
  const before = usage();
  await assert.rejects(fn, (err: unknown) => err instanceof ClipSegError, `${name}: expected a ClipSegError`);
  assert.deepEqual(usage(), before, `${name}: the failed call left tensors or bytes behind`);
}

for (const backend of TEST_BACKENDS) {
  describe(`no tensor leaks on ${backend}`, () => {
    test('model loading and disposal, processor, forward, segment, embed, inspect, evaluation', async () => {
      await useBackend(backend);
      const baseline = usage();
      const seg = await ClipSeg.fromPretrained(MODEL, { backend });
      assert.equal(seg.backend, backend);
      const image = await loadImage(IMAGE);
      const prompts = ['a cat', 'the sky'];

      const processed = await assertNoGrowth(
        'processor.call',
        () => seg.processor.call({ text: prompts, images: [image], padding: true }),
        disposeProcessorOutput,
      );
      assert.ok(processed.inputIds !== undefined && processed.pixelValues !== undefined);

      await assertNoGrowth('model.forward (text prompts, hidden states and attentions)', () => {
        const inputs = seg.processor.call({ text: prompts, images: [image], padding: true });
        try {
          return seg.model.forward({
            pixelValues: inputs.pixelValues!,
            inputIds: inputs.inputIds!,
            attentionMask: inputs.attentionMask!,
            outputHiddenStates: true,
            outputAttentions: true,
          });
        } finally {
          disposeProcessorOutput(inputs);
        }
      }, disposeOutput);

      const results = await assertNoGrowth('segment (text prompts)', () => seg.segment(IMAGE, prompts));
      assert.equal(results.length, 2);
      await assertNoGrowth('segment (several images, logits returned)', () => seg.segment([IMAGE, OTHER_IMAGE], prompts, { returnLogits: true }));
      await assertNoGrowth('segment (visual prompt)', () => seg.segment(IMAGE, [{ image: OTHER_IMAGE, label: 'coffee' }]));
      const [embedding] = await assertNoGrowth('embed', () => seg.embed('a cat'));
      await assertNoGrowth('segment (embedding prompt)', () => seg.segment(IMAGE, [{ embedding: embedding!, label: 'cat' }]));

      await assertNoGrowthOnError('segment (second image missing)', () => seg.segment([IMAGE, path.join(scratch, 'missing.png')], prompts));
      await assertNoGrowthOnError('segment (threshold out of range)', () => seg.segment(IMAGE, prompts, { threshold: 2 }));
      await assertNoGrowthOnError('segment (undecodable image bytes)', () => seg.segment(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), prompts));

      const inspected = await assertNoGrowth(
        'inspect',
        () => seg.inspect(IMAGE, prompts, { capture: ['clip.vision_model.encoder.layers.*', 'decoder.layers.*:input'] }),
        (r) => tf.dispose([r.logits, r.pixelValues, r.conditionalEmbeddings, ...Object.values(r.captures)]),
      );
      assert.ok(Object.keys(inspected.captures).length > 0, 'inspect captured nothing');

      const evaluation = await assertNoGrowth('evaluate (paper protocol)', () =>
        evaluate(seg.model, PHRASECUT, { tokenizer: seg.processor.tokenizer, size: seg.inputSize, batchSize: 2 }),
      );
      assert.ok(evaluation.samples > 0);
      await assertNoGrowth('evaluate (official protocol)', () =>
        evaluate(seg.model, PHRASECUT, { tokenizer: seg.processor.tokenizer, size: seg.inputSize, batchSize: 3, protocol: 'official' }),
      );

      seg.dispose();
      assert.deepEqual(usage(), baseline, 'disposing the ClipSeg instance freed every tensor it made');
    });

    test('training steps (tiny preset, checkpoint every step), resume, refused resume', async () => {
      await useBackend(backend);
      const data = path.join(scratch, `data-${backend}`);
      await makeSynthetic({ out: data, images: 4, size: 64, seed: 3 });
      const out = path.join(scratch, `run-${backend}`);
      const options = { data, out, config: 'tiny', steps: 2, batchSize: 1, accumulate: 2, checkpointEvery: 1, visual: false, progress: false, note: () => undefined };
      const first = await assertNoGrowth('runTrain', () => runTrain(options));
      assert.equal(first.steps, 2);
      const resumed = await assertNoGrowth('runTrain (resume at the end)', () => runTrain({ ...options, resume: true }));
      assert.equal(resumed.startStep, 2);
      await assertNoGrowthOnError('runTrain (resume with other settings)', () => runTrain({ ...options, steps: 3, resume: true }));
    });
  });
}
