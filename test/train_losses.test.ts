/**
 * The soft Dice loss against hand-derived values and its analytic gradient, and the loss selector's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';
import { bceWithLogits } from '../src/models/losses.js';
import { segmentationLoss, softDiceLoss, type SegmentationLoss } from '../src/train/losses.js';

await tf.setBackend('wasm');

function scalar(f: () => tf.Scalar): number {
  return tf.tidy(() => f().dataSync()[0]!);
}

test('zero logits (p = 1/2): 1 - (n + 1) / (m/2 + n + 1) per sample, averaged', () => {
  const before = tf.memory().numTensors;
  // Sample 0: 3 of 8 pixels set; sample 1: none.
  const labels = tf.tensor3d([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 2, 4]);
  const logits = tf.zeros([2, 2, 4]);
  const expected = ((1 - (3 + 1) / (4 + 3 + 1)) + (1 - 1 / (4 + 0 + 1))) / 2;
  assert.ok(Math.abs(scalar(() => softDiceLoss(logits, labels)) - expected) < 1e-6);
  tf.dispose([labels, logits]);
  assert.equal(tf.memory().numTensors, before);
});

test('a confident correct prediction scores ~0, also on an empty label; a confident wrong one ~1', () => {
  const labels = tf.tensor3d([0, 1, 1, 0, 0, 0, 0, 0], [2, 2, 2]);
  const right = tf.sub(tf.mul(labels, 60), 30);
  const wrong = tf.neg(right);
  assert.ok(scalar(() => softDiceLoss(right, labels)) < 1e-6);
  // Sample 0: overlap 0, sum(p) 2, sum(y) 2 -> 1 - 1/5; sample 1: sum(p) 4 -> 1 - 1/5.
  assert.ok(Math.abs(scalar(() => softDiceLoss(wrong, labels)) - 0.8) < 1e-6);
  tf.dispose([labels, right, wrong]);
});

test('the gradient equals the analytic one: dL/dx_i = -(2 y_i (S + 1) - (2 I + 1)) / (S + 1)^2 * p_i (1 - p_i) / B', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (batch, pixels, seed) => {
        let state = seed;
        const next = (): number => {
          state = (state * 1103515245 + 12345) % 2 ** 31;
          return state / 2 ** 31;
        };
        const x = Float32Array.from({ length: batch * pixels }, () => Math.fround(8 * next() - 4));
        const y = Float32Array.from({ length: batch * pixels }, () => (next() < 0.4 ? 1 : 0));
        const got = tf.tidy(() => {
          const labels = tf.tensor2d(y, [batch, pixels]);
          return tf.grad((l: tf.Tensor) => softDiceLoss(l, labels))(tf.tensor2d(x, [batch, pixels])).dataSync();
        });
        for (let b = 0; b < batch; b++) {
          const p = Array.from(x.subarray(b * pixels, (b + 1) * pixels), (v) => 1 / (1 + Math.exp(-v)));
          const ys = y.subarray(b * pixels, (b + 1) * pixels);
          const overlap = p.reduce((acc, v, i) => acc + v * ys[i]!, 0);
          const s = p.reduce((a, v) => a + v, 0) + ys.reduce((a, v) => a + v, 0);
          for (let i = 0; i < pixels; i++) {
            const want = (-(2 * ys[i]! * (s + 1) - (2 * overlap + 1)) / (s + 1) ** 2) * p[i]! * (1 - p[i]!) / batch;
            assert.ok(Math.abs(got[b * pixels + i]! - want) < 1e-6, `sample ${b} pixel ${i}: ${got[b * pixels + i]} vs ${want}`);
          }
        }
      },
    ),
    { numRuns: 50, seed: 7 },
  );
});

test('segmentationLoss: bce is the recipe loss, bce+dice the sum; bad names and shapes are typed errors', () => {
  const labels = tf.tensor3d([0, 1, 1, 0, 1, 0, 0, 0], [2, 2, 2]);
  const logits = tf.tensor3d([-1, 2, 0.5, -3, 1, -2, 0, -1], [2, 2, 2]);
  const bce = scalar(() => bceWithLogits(logits, labels));
  assert.equal(scalar(() => segmentationLoss('bce', logits, labels)), bce);
  const dice = scalar(() => softDiceLoss(logits, labels));
  assert.ok(Math.abs(scalar(() => segmentationLoss('bce+dice', logits, labels)) - (bce + dice)) < 1e-6);
  assert.throws(() => segmentationLoss('focal' as SegmentationLoss, logits, labels), (e) => e instanceof InvalidArgumentError && /loss/.test(e.message) && /'focal'/.test(e.message));
  const flat = tf.zeros([2, 4]);
  assert.throws(() => softDiceLoss(logits, flat), (e) => e instanceof ShapeError && /labels/.test(e.message));
  tf.dispose([labels, logits, flat]);
});
