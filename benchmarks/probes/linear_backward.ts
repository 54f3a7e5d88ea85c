/**
 * The backward pass of a Linear layer on tfjs-wasm. tfjs differentiates y = x W with dx = dy W^T and dW = x^T dy,
 * written as matMul(dy, W, false, true) and matMul(x, dy, true, false). The wasm kernel sends every product with a
 * transposed operand (or a batch) to its naive loop instead of XNNPACK, so these products run far slower than the
 * forward one. Transposing the operand explicitly first (a C++ Transpose kernel) keeps both on XNNPACK, which is
 * what the layers' custom gradient (`linearProduct`, src/layers/product.ts) does; the last two variants compare
 * the whole backward of tfjs' own gradient with it.
 *
 * Shapes are the decoder MLP of the benchmark's training step (batch 8: 8 x 485 = 3880 tokens, 64 -> 2048 -> 64).
 *
 *   node --import tsx benchmarks/probes/linear_backward.ts [--rounds N]
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { linearProduct } from '../../src/layers/product.js';
import { runSide } from '../side_io.js';
import { type Variant, maxAbsDiff, timeInterleaved } from './timing.js';

const N = 8 * 485;
const SHAPES: [number, number][] = [
  [64, 2048],
  [2048, 64],
];

function variants(x: tf.Tensor2D, w: tf.Tensor2D, dy: tf.Tensor2D): Variant[] {
  const [k, n] = w.shape;
  const label = `[${N},${k}]x[${k},${n}]`;
  return [
    { name: `${label} forward x W`, run: () => tf.matMul(x, w) },
    { name: `${label} dx = dy W^T, transposeB flag`, run: () => tf.matMul(dy, w, false, true) },
    { name: `${label} dx = dy (W^T explicit)`, run: () => tf.matMul(dy, tf.transpose(w)) },
    { name: `${label} dW = x^T dy, transposeA flag`, run: () => tf.matMul(x, dy, true, false) },
    { name: `${label} dW = (x^T explicit) dy`, run: () => tf.matMul(tf.transpose(x), dy) },
    {
      name: `${label} dx and dW through tf.grads of fused matMul (tfjs' own gradient)`,
      run: () => {
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D }).mul(dy))([x, w]);
        return tf.concat([dx!.flatten(), dw!.flatten()]);
      },
    },
    {
      name: `${label} dx and dW through tf.grads of linearProduct (what training runs)`,
      run: () => {
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => linearProduct(a as tf.Tensor2D, b as tf.Tensor2D).mul(dy))([x, w]);
        return tf.concat([dx!.flatten(), dw!.flatten()]);
      },
    },
  ];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 5;
  await selectBackend('wasm');
  const lines = [`| ms, median of ${rounds} (interleaved) | ms |`, '|---|---|'];
  const checks: string[] = [];
  for (const [k, n] of SHAPES) {
    const x = tf.randomNormal([N, k]) as tf.Tensor2D;
    const w = tf.randomNormal([k, n]) as tf.Tensor2D;
    const dy = tf.randomNormal([N, n]) as tf.Tensor2D;
    const list = variants(x, w, dy);
    for (const [flag, explicit] of [
      [1, 2],
      [3, 4],
      [5, 6],
    ] as const) {
      const a = tf.tidy(list[flag]!.run);
      const b = tf.tidy(list[explicit]!.run);
      checks.push(`${list[explicit]!.name}: max abs diff ${(await maxAbsDiff(a, b)).toExponential(1)}`);
      tf.dispose([a, b]);
    }
    for (const t of await timeInterleaved(list, rounds)) lines.push(`| ${t.name} | ${t.median_ms.toFixed(0)} |`);
    tf.dispose([x, w, dy]);
  }
  process.stdout.write(`${lines.join('\n')}\n\n${checks.map((c) => `- ${c}`).join('\n')}\n`);
}

runSide(main);
