/**
 * The weight layers' custom gradient (`linearProduct`): the forward is bit-identical to the fused product it wraps,
 * the gradients equal tfjs' own differentiation of that product on random shapes, and no backward product uses a
 * transposed operand (which tfjs-wasm runs outside XNNPACK).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../src/layers/context.js';
import { Linear } from '../src/layers/linear.js';
import { linearProduct } from '../src/layers/product.js';
import { ParameterRegistry } from '../src/layers/scope.js';
import { maxAbs, maxAbsDiff } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';

/** The product as tfjs differentiates it by itself. */
function plainProduct(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor): tf.Tensor {
  return bias === undefined ? tf.matMul(x, w) : tf.fused.matMul({ a: x, b: w, bias });
}

/** Gradients of sum(product * probe) w.r.t. x, w and (when present) the bias. */
function gradients(product: typeof plainProduct, x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor | undefined, probe: tf.Tensor): tf.Tensor[] {
  const inputs = bias === undefined ? [x, w] : [x, w, bias];
  return tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(product(args[0] as tf.Tensor2D, args[1] as tf.Tensor2D, args[2]), probe)))(inputs);
}

const shapes = fc.record({
  rows: fc.integer({ min: 1, max: 40 }),
  inFeatures: fc.integer({ min: 1, max: 70 }),
  outFeatures: fc.integer({ min: 1, max: 70 }),
  bias: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1_000_000 }),
});

for (const backend of TEST_BACKENDS) {
  describe(`linearProduct custom gradient (${backend})`, () => {
    test('forward equals the fused product exactly; gradients equal tfjs autodiff on random shapes', async () => {
      await useBackend(backend);
      fc.assert(
        fc.property(shapes, ({ rows, inFeatures, outFeatures, bias, seed }) => {
          const start = tf.memory().numTensors;
          const x = tf.randomNormal([rows, inFeatures], 0, 1, 'float32', seed) as tf.Tensor2D;
          const w = tf.randomNormal([inFeatures, outFeatures], 0, 1, 'float32', seed + 1) as tf.Tensor2D;
          const b = bias ? tf.randomNormal([outFeatures], 0, 1, 'float32', seed + 2) : undefined;
          const probe = tf.randomNormal([rows, outFeatures], 0, 1, 'float32', seed + 3);
          const got = tf.tidy(() => linearProduct(x, w, b));
          const want = tf.tidy(() => plainProduct(x, w, b));
          assert.equal(maxAbsDiff(got, want), 0, 'forward');
          const gotGrads = gradients(linearProduct, x, w, b, probe);
          const wantGrads = gradients(plainProduct, x, w, b, probe);
          ['dx', 'dW', 'db'].slice(0, gotGrads.length).forEach((name, i) => {
            assert.deepEqual(gotGrads[i]!.shape, wantGrads[i]!.shape, `${name} shape`);
            // Both are float32 sums of up to 70 products; only their summation order may differ.
            const err = maxAbsDiff(gotGrads[i]!, wantGrads[i]!);
            assert.ok(err <= 1e-5 * (1 + maxAbs(wantGrads[i]!)), `${name}: max abs diff ${err} for [${rows},${inFeatures}]x[${inFeatures},${outFeatures}]`);
          });
          tf.dispose([x, w, probe, got, want, ...gotGrads, ...wantGrads, ...(b === undefined ? [] : [b])]);
          assert.equal(tf.memory().numTensors, start, 'no tensors leak');
        }),
        { numRuns: 40, seed: 7 },
      );
    });

    test('Linear over [B, T, in]: variable gradients through the tape, hand-derived', async () => {
      await useBackend(backend);
      const registry = new ParameterRegistry();
      const linear = new Linear(registry.root('proj'), 3, 2);
      registry.initialize(3);
      // [2, 2, 3]: four rows; the upstream gradient is all ones, so dW[k, j] = sum over rows of x[., k] and db = 4.
      const x = tf.tensor3d([1, 2, 3, 4, 5, 6, -1, 0, 2, 0.5, -2, 1], [2, 2, 3]);
      const start = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(
        () => tf.sum(linear.forward(x, new ForwardContext())) as tf.Scalar,
        [linear.weight.variable, linear.bias!.variable],
      );
      const colSums = [4.5, 5, 12];
      assert.deepEqual(Array.from(grads[linear.weight.variable.name]!.dataSync()), colSums.flatMap((s) => [s, s]));
      assert.deepEqual(Array.from(grads[linear.bias!.variable.name]!.dataSync()), [4, 4]);
      const dx = tf.grad((input: tf.Tensor) => tf.sum(linear.forward(input, new ForwardContext())))(x);
      // d sum / d x[., k] = sum over outputs of W[k, .]
      const w = linear.weight.variable.arraySync() as number[][];
      const rowSums = w.map((r) => r[0]! + r[1]!);
      assert.ok(maxAbsDiff(dx, Array.from({ length: 4 }, () => rowSums).flat()) <= 1e-6, 'dx');
      tf.dispose([value, dx, ...Object.values(grads)]);
      assert.equal(tf.memory().numTensors, start, 'no tensors leak');
      x.dispose();
      registry.dispose();
    });

    test('the backward products take no transposed operand', async () => {
      await useBackend(backend);
      // in != out, so a product whose inner dimensions disagree can only be one with a transpose flag.
      const x = tf.randomNormal([6, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
      const b = tf.zeros([3]);
      const probe = tf.randomNormal([6, 3], 0, 1, 'float32', 3);
      const check = async (product: typeof plainProduct) => {
        const info = await tf.profile(() => tf.tidy(() => tf.concat(gradients(product, x, w, b, probe).map((g) => g.flatten()))));
        const products = info.kernels.filter((k) => /MatMul/.test(k.name));
        tf.dispose(info.result as tf.Tensor);
        return products.map((k) => {
          const [a, c] = k.inputShapes as number[][];
          return a!.at(-1) === c!.at(-2);
        });
      };
      const ours = await check(linearProduct);
      assert.ok(ours.length >= 3, `forward and two backward products profiled, got ${ours.length}`);
      assert.ok(ours.every(Boolean), 'every product of the custom gradient is a plain x W');
      assert.ok((await check(plainProduct)).some((plain) => !plain), 'tfjs autodiff does use transpose flags (the probe can see them)');
      tf.dispose([x, w, b, probe]);
    });
  });
}
