/**
 * tfjs-backend-wasm 4.22's Slice kernel is JavaScript: it first reads its whole input out of the wasm heap
 * (`readSync` is `HEAPU8.slice`, a copy), then copies the requested part back in. A slice therefore costs a copy of
 * its input, not of its output, and taking N pieces of a tensor copies it N times (SplitV and Unpack are built on
 * Slice and do the same). GatherV2 is a C++ kernel that copies only what it returns.
 *
 * This probe takes the pieces the model takes, each way: the 12 heads [T, 64] of q [T, 768], and the 8 rows
 * [T, 768] of a [8, T, 768] batch (T = 485), and checks that every way returns the same values. It runs twice:
 * with the backend's own kernels, then with the `Unpack` that `useWasmKernels` (src/layers/wasm_kernels.ts)
 * installs for the models, which copies each piece once.
 *
 *   node --import tsx benchmarks/probes/slice_copies.ts [--rounds N]
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { useWasmKernels } from '../../src/layers/wasm_kernels.js';
import { runSide } from '../side_io.js';
import { type Variant, maxAbsDiff, timeInterleaved } from './timing.js';

const T = 485;
const D = 768;
const H = 12;
const Dh = D / H;
const B = 8;

/** All pieces as one tensor (stacked), so a variant's result can be compared and its work forced. */
function headVariants(q: tf.Tensor2D): Variant[] {
  return [
    {
      name: `12 heads of [${T},${D}]: tf.slice per head (column block)`,
      run: () => tf.stack(Array.from({ length: H }, (_, h) => tf.slice(q, [0, h * Dh], [T, Dh]))),
    },
    {
      name: `12 heads of [${T},${D}]: one transpose to [H,T,Dh], tf.gather per head`,
      run: () => {
        // [T, D] -> [T, H, Dh] -> [H, T, Dh]
        const heads = tf.transpose(q.reshape([T, H, Dh]), [1, 0, 2]);
        return tf.stack(Array.from({ length: H }, (_, h) => tf.gather(heads, h, 0)));
      },
    },
    {
      name: `12 heads of [${T},${D}]: one transpose to [H,T,Dh], tf.unstack`,
      run: () => tf.stack(tf.unstack(tf.transpose(q.reshape([T, H, Dh]), [1, 0, 2]))),
    },
  ];
}

function rowVariants(x: tf.Tensor3D): Variant[] {
  return [
    { name: `${B} rows of [${B},${T},${D}]: tf.slice per row`, run: () => tf.stack(Array.from({ length: B }, (_, b) => tf.slice(x, [b, 0, 0], [1, T, D]).reshape([T, D]))) },
    { name: `${B} rows of [${B},${T},${D}]: tf.gather per row`, run: () => tf.stack(Array.from({ length: B }, (_, b) => tf.gather(x, b, 0))) },
    { name: `${B} rows of [${B},${T},${D}]: tf.unstack`, run: () => tf.stack(tf.unstack(x)) },
  ];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 9;
  await selectBackend('wasm');
  const q = tf.randomNormal([T, D]) as tf.Tensor2D;
  const x = tf.randomNormal([B, T, D]) as tf.Tensor3D;
  const lines = [`| ms, median of ${rounds} (interleaved) | ms | max abs diff to the first |`, '|---|---|---|'];
  for (const kernels of ['the backend\'s kernels', 'useWasmKernels()']) {
    if (kernels === 'useWasmKernels()') useWasmKernels();
    lines.push(`| **${kernels}** | | |`);
    await measure(q, x, rounds, lines);
  }
  tf.dispose([q, x]);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function measure(q: tf.Tensor2D, x: tf.Tensor3D, rounds: number, lines: string[]): Promise<void> {
  for (const variants of [headVariants(q), rowVariants(x)]) {
    const reference = tf.tidy(variants[0]!.run);
    const diffs: number[] = [];
    for (const v of variants) {
      const y = tf.tidy(v.run);
      diffs.push(await maxAbsDiff(reference, y));
      y.dispose();
    }
    reference.dispose();
    const timings = await timeInterleaved(variants, rounds);
    for (const [i, t] of timings.entries()) lines.push(`| ${t.name} | ${t.median_ms.toFixed(2)} | ${diffs[i]} |`);
  }
}

runSide(main);
