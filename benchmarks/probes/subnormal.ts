/**
 * Subnormal floats in the backward of an attention head on tfjs-wasm. A trained head is peaked: in the shipped demo
 * model's first decoder layer at 224 px, 68 % of the probabilities are exactly zero and 10 % lie below 1e-30. Their
 * products with the small gradients of a mean loss fall below float32's smallest normal number, and WebAssembly has
 * no flush-to-zero mode, so those operations take the CPU's slow path. `attendHead` (src/layers/attention_head.ts)
 * runs its backward on the upstream gradient times 2^40 and scales the results back; the other variant here is the
 * same backward without the scaling.
 *
 * Heads are the decoder's at 224 px in 8 px patches (785 tokens, 16 wide), one per batch element of a step of 16;
 * "peaked" scores have a spread of 40 (about the demo model's share of zero probabilities), "flat" ones of 1.
 *
 *   node --import tsx benchmarks/probes/subnormal.ts [--rounds N]
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { attendHead, headProbabilities } from '../../src/layers/attention_head.js';
import { productGradients } from '../../src/layers/product.js';
import { runSide } from '../side_io.js';
import { type Variant, maxAbsDiff, timeInterleaved } from './timing.js';

const T = 785;
const DH = 16;
const HEADS = 16;

type Head = (q: tf.Tensor2D, kT: tf.Tensor2D, v: tf.Tensor2D) => tf.Tensor2D;

/** The head's backward as attendHead's, on the upstream gradient as it comes. */
const unscaled: Head = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [q, kT, v, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([q, kT, v]);
  return {
    value: tf.matMul(headProbabilities(q, kT, undefined), v),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [qs, ks, vs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const p = headProbabilities(qs, ks, undefined);
      const [dp, dv] = productGradients(dy, p, vs);
      const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), 1, true)));
      return [...productGradients(ds, qs, ks), dv];
    },
  };
}) as unknown as Head;

const scaled: Head = (q, kT, v) => attendHead(q, kT, v, undefined);

interface Inputs {
  q: tf.Tensor2D[];
  kT: tf.Tensor2D[];
  v: tf.Tensor2D[];
  dy: tf.Tensor2D[];
}

function inputs(scoreSpread: number): Inputs {
  // q k^T sums DH products of two N(0, s) values: spread s^2 sqrt(DH).
  const s = Math.sqrt(scoreSpread / Math.sqrt(DH));
  const make = (shape: [number, number], std: number) => Array.from({ length: HEADS }, () => tf.randomNormal(shape, 0, std) as tf.Tensor2D);
  return { q: make([T, DH], s), kT: make([DH, T], s), v: make([T, DH], 1), dy: make([T, DH], 1e-7) };
}

/** dq, dkT and dv of every head, flattened into one tensor. */
function gradients(head: Head, x: Inputs): tf.Tensor {
  const parts: tf.Tensor[] = [];
  for (let h = 0; h < HEADS; h++) {
    const dy = x.dy[h]!;
    const grads = tf.grads((q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(head(q as tf.Tensor2D, kT as tf.Tensor2D, v as tf.Tensor2D), dy)))([x.q[h]!, x.kT[h]!, x.v[h]!]);
    parts.push(...grads.map((g) => g.flatten()));
  }
  return tf.concat(parts);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 5;
  await selectBackend('wasm');
  const lines = [`| ${HEADS} heads of [${T}, ${DH}], forward and backward: ms, median of ${rounds} (interleaved) | ms |`, '|---|---|'];
  const checks: string[] = [];
  const cases: [string, Inputs][] = [['flat', inputs(1)], ['peaked', inputs(40)]];
  const list: Variant[] = [];
  for (const [label, x] of cases) {
    const p = tf.tidy(() => headProbabilities(x.q[0]!, x.kT[0]!, undefined));
    const share = tf.tidy(() => [tf.mean(tf.equal(p, 0).toFloat()), tf.mean(tf.logicalAnd(tf.greater(p, 0), tf.less(p, 1e-30)).toFloat())]);
    const [zero, tiny] = await Promise.all(share.map(async (t) => (await t.data())[0]! * 100));
    tf.dispose([p, ...share]);
    const a = tf.tidy(() => gradients(unscaled, x));
    const b = tf.tidy(() => gradients(scaled, x));
    const largest = (await tf.tidy(() => tf.max(tf.abs(a))).data())[0]!;
    checks.push(`${label}: ${zero.toFixed(0)} % of probabilities zero, ${tiny.toFixed(0)} % in (0, 1e-30); scaled against unscaled gradients: max abs diff ${(await maxAbsDiff(a, b)).toExponential(1)} (largest ${largest.toExponential(1)})`);
    tf.dispose([a, b]);
    list.push({ name: `${label}, backward unscaled`, run: () => gradients(unscaled, x) });
    list.push({ name: `${label}, backward on the gradient times 2^40 (attendHead)`, run: () => gradients(scaled, x) });
  }
  for (const t of await timeInterleaved(list, rounds)) lines.push(`| ${t.name} | ${t.median_ms.toFixed(0)} |`);
  for (const [, x] of cases) tf.dispose([...x.q, ...x.kT, ...x.v, ...x.dy]);
  process.stdout.write(`${lines.join('\n')}\n\n${checks.map((c) => `- ${c}`).join('\n')}\n`);
}

runSide(main);
