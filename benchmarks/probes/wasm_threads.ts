/**
 * Does tfjs-backend-wasm's threaded SIMD build work under Node, and what does it give? Each configuration runs in
 * its own process (the build is chosen once per process): the default SIMD build, and the threaded SIMD build
 * (`benchmarks/wasm_threads.ts`) with 1 and 2 threads. Kernels are the ViT-B/16 shapes at 352x352 (485 tokens);
 * with `benchmarks/models/` present, one logits-only forward of the benchmark model (1 image, 1 prompt) too.
 *
 *   node --import tsx benchmarks/probes/wasm_threads.ts [--rounds N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { loadModelFolder } from '../../src/io/model_files.js';
import { MODEL_DIR } from '../cases.js';
import { runSide } from '../side_io.js';
import { tensorsIn } from '../tensors.js';
import { initThreadedWasm } from '../wasm_threads.js';
import { type Variant, timeInterleaved } from './timing.js';

const CONFIGS = ['simd', 'threaded:1', 'threaded:2'] as const;
const T = 485;
const D = 768;
const H = 12;
const Dh = D / H;

function kernels(): { variants: Variant[]; dispose: () => void } {
  const x = tf.randomNormal([T, D]);
  const hidden = tf.randomNormal([T, 4 * D]);
  const w = tf.randomNormal([D, D]);
  const w1 = tf.randomNormal([D, 4 * D]);
  const w2 = tf.randomNormal([4 * D, D]);
  const b = tf.randomNormal([D]);
  const b1 = tf.randomNormal([4 * D]);
  const qh = tf.randomNormal([T, Dh]);
  const kT = tf.randomNormal([D, T]);
  const scores = tf.randomNormal([H, T, T]);
  const variants: Variant[] = [
    { name: `fused matMul [${T},${D}]x[${D},${D}] + bias`, run: () => tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }) },
    { name: `fused matMul [${T},${D}]x[${D},${4 * D}] + bias`, run: () => tf.fused.matMul({ a: x as tf.Tensor2D, b: w1 as tf.Tensor2D, bias: b1 }) },
    { name: `fused matMul [${T},${4 * D}]x[${4 * D},${D}] + bias`, run: () => tf.fused.matMul({ a: hidden as tf.Tensor2D, b: w2 as tf.Tensor2D, bias: b }) },
    {
      // A fresh right operand per call, as attention has (K^T rows of one head).
      name: `head scores [${T},${Dh}]x[${Dh},${T}] (fresh K^T slice)`,
      run: () => tf.matMul(qh as tf.Tensor2D, tf.slice(kT, [0, 0], [Dh, T]) as tf.Tensor2D),
    },
    { name: `softmax [${H},${T},${T}]`, run: () => tf.softmax(scores) },
    { name: `sigmoid [${T},${4 * D}]`, run: () => tf.sigmoid(hidden) },
  ];
  return { variants, dispose: () => tf.dispose([x, hidden, w, w1, w2, b, b1, qh, kT, scores]) };
}

/** Median forward time and the logits' sum (the same input in every configuration, to compare the values). */
async function modelForward(rounds: number): Promise<{ ms: number; logitsSum: number } | undefined> {
  if (!existsSync(MODEL_DIR)) return undefined;
  const model = await loadModelFolder(MODEL_DIR);
  const pixelValues = tf.randomNormal([1, 3, 352, 352], 0, 1, 'float32', 7) as tf.Tensor4D;
  const inputIds = tf.tensor2d([[49406, 320, 2368, 49407]], [1, 4], 'int32');
  const samples: number[] = [];
  let logitsSum = 0;
  for (let i = 0; i <= rounds; i++) {
    const start = performance.now();
    const out = model.forward({ pixelValues, inputIds }, { computePooled: false });
    const logits = await out.logits.data();
    if (i > 0) samples.push(performance.now() - start);
    logitsSum = (logits as Float32Array).reduce((a, b) => a + b, 0);
    tf.dispose(tensorsIn(out));
  }
  model.dispose();
  tf.dispose([pixelValues, inputIds]);
  return { ms: samples.sort((a, b) => a - b)[samples.length >> 1]!, logitsSum };
}

async function child(config: string, rounds: number): Promise<void> {
  const threads = config.startsWith('threaded:') ? Number(config.split(':')[1]) : 0;
  const actual = threads > 0 ? (await initThreadedWasm(threads)).threads : (await selectBackend('wasm'), 1);
  const { variants, dispose } = kernels();
  const timings = await timeInterleaved(variants, rounds);
  dispose();
  const model = await modelForward(Math.max(2, rounds >> 1));
  process.stdout.write(`${JSON.stringify({ config, threads: actual, timings, model_ms: model?.ms, logits_sum: model?.logitsSum })}\n`);
}

interface ChildReport {
  config: string;
  threads: number;
  timings: { name: string; median_ms: number }[];
  model_ms?: number;
  logits_sum?: number;
}

function parent(rounds: number): void {
  const reports: ChildReport[] = [];
  for (const config of CONFIGS) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', config, '--rounds', String(rounds)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const line = run.stdout.trim().split('\n').pop() ?? '';
    if (run.status !== 0 || !line.startsWith('{')) {
      process.stdout.write(`${config}: failed (exit ${String(run.status)}): ${run.stderr.trim().split('\n').slice(-1)[0] ?? ''}\n`);
      continue;
    }
    reports.push(JSON.parse(line) as ChildReport);
  }
  if (reports.length === 0) return;
  const header = reports.map((r) => `${r.config} (${r.threads} thread${r.threads === 1 ? '' : 's'})`);
  const lines = [`| ms, median of ${rounds} | ${header.join(' | ')} |`, `|---|${reports.map(() => '---').join('|')}|`];
  for (const [i, { name }] of reports[0]!.timings.entries()) {
    lines.push(`| ${name} | ${reports.map((r) => r.timings[i]!.median_ms.toFixed(1)).join(' | ')} |`);
  }
  if (reports.some((r) => r.model_ms !== undefined)) {
    lines.push(`| model forward, 1 image 1 prompt, logits only | ${reports.map((r) => r.model_ms?.toFixed(0) ?? '–').join(' | ')} |`);
    lines.push(`| sum of those logits (same input everywhere) | ${reports.map((r) => r.logits_sum?.toFixed(3) ?? '–').join(' | ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 7;
const childAt = args.indexOf('--child');
if (childAt >= 0) {
  runSide(() => child(args[childAt + 1] ?? 'simd', rounds));
} else {
  parent(rounds);
}
