/**
 * Does tfjs-backend-wasm's threaded SIMD build pay on this machine? Three configurations, each in its own process
 * (the build is chosen once per process): the default SIMD build, and the threaded SIMD build with 1 and 2
 * threads. All three processes stay up and take turns, one round at a time (A, B, C, A, B, C, ...), so a load
 * that changes during the probe shifts them alike and only one computes at any moment. A round is the ViT-B/16
 * kernels at 352x352 (485 tokens) and, with `benchmarks/models/` present, one logits-only forward of the benchmark
 * model (1 image, 1 prompt). Prints the medians over the rounds and the load average before and after.
 *
 *   node --import tsx benchmarks/probes/wasm_threads.ts [--rounds N]
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { loadModelFolder } from '../../src/io/model_files.js';
import { count } from '../../src/text.js';
import { MODEL_DIR } from '../cases.js';
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

interface Forward {
  /** One forward; returns its milliseconds and the logits' sum (the same input in every configuration). */
  run(): Promise<{ ms: number; logitsSum: number }>;
  dispose(): void;
}

async function modelForward(): Promise<Forward | undefined> {
  if (!existsSync(MODEL_DIR)) return undefined;
  const model = await loadModelFolder(MODEL_DIR);
  const pixelValues = tf.randomNormal([1, 3, 352, 352], 0, 1, 'float32', 7) as tf.Tensor4D;
  const inputIds = tf.tensor2d([[49406, 320, 2368, 49407]], [1, 4], 'int32');
  return {
    async run() {
      const start = performance.now();
      const out = model.forward({ pixelValues, inputIds }, { computePooled: false });
      const logits = (await out.logits.data()) as Float32Array;
      const ms = performance.now() - start;
      tf.dispose(tensorsIn(out));
      return { ms, logitsSum: logits.reduce((a, b) => a + b, 0) };
    },
    dispose() {
      model.dispose();
      tf.dispose([pixelValues, inputIds]);
    },
  };
}

interface RoundReport {
  threads: number;
  /** Milliseconds per kernel, in the order of `kernels()`. */
  kernels: { name: string; ms: number }[];
  model_ms?: number;
  logits_sum?: number;
}

/** A configuration's process: starts its build, warms up, then runs one round per line on stdin. */
async function child(config: string): Promise<void> {
  const threads = config.startsWith('threaded:') ? Number(config.split(':')[1]) : 0;
  const actual = threads > 0 ? (await initThreadedWasm(threads)).threads : (await selectBackend('wasm'), 1);
  const { variants, dispose } = kernels();
  const forward = await modelForward();
  await timeInterleaved(variants, 1, 0);
  await forward?.run();
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'round') break;
    const timings = await timeInterleaved(variants, 1, 0);
    const model = await forward?.run();
    const report: RoundReport = { threads: actual, kernels: timings.map((t) => ({ name: t.name, ms: t.median_ms })) };
    if (model !== undefined) Object.assign(report, { model_ms: model.ms, logits_sum: model.logitsSum });
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
  dispose();
  forward?.dispose();
}

/** A child process and a way to wait for its next output line. */
function startChild(config: string): { process: ChildProcessWithoutNullStreams; next: () => Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', config], { stdio: 'pipe' });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(line);
    else lines.push(line);
  });
  proc.on('exit', (code) => {
    for (const resolve of waiting.splice(0)) resolve(`failed (exit ${String(code)}): ${stderr.trim().split('\n').pop() ?? ''}`);
  });
  const next = () => new Promise<string>((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : waiting.push(resolve)));
  return { process: proc, next };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const load = () => os.loadavg().map((x) => x.toFixed(2)).join('/');

async function parent(rounds: number): Promise<void> {
  const loadBefore = load();
  const children = CONFIGS.map((config) => ({ config, ...startChild(config) }));
  const live: typeof children = [];
  for (const c of children) {
    const line = await c.next();
    if (line === 'ready') live.push(c);
    else process.stdout.write(`${c.config}: ${line}\n`);
  }
  const samples = new Map<string, RoundReport[]>(live.map((c) => [c.config, []]));
  for (let round = 0; round < rounds; round++) {
    for (const c of live) {
      c.process.stdin.write('round\n');
      const line = await c.next();
      if (!line.startsWith('{')) throw new Error(`${c.config}: ${line}`);
      samples.get(c.config)!.push(JSON.parse(line) as RoundReport);
    }
  }
  for (const c of children) c.process.stdin.end();
  const reports = live.map((c) => ({ config: c.config, rounds: samples.get(c.config)! }));
  if (reports.length === 0) return;
  const header = reports.map((r) => `${r.config} (${count(r.rounds[0]!.threads, 'thread')})`);
  const lines = [
    `load average (1/5/15 min): ${loadBefore} before, ${load()} after`,
    '',
    `| ms, median of ${rounds} interleaved | ${header.join(' | ')} |`,
    `|---|${reports.map(() => '---').join('|')}|`,
  ];
  for (const [i, { name }] of reports[0]!.rounds[0]!.kernels.entries()) {
    lines.push(`| ${name} | ${reports.map((r) => median(r.rounds.map((x) => x.kernels[i]!.ms)).toFixed(1)).join(' | ')} |`);
  }
  if (reports[0]!.rounds[0]!.model_ms !== undefined) {
    lines.push(`| model forward, 1 image 1 prompt, logits only | ${reports.map((r) => median(r.rounds.map((x) => x.model_ms!)).toFixed(0)).join(' | ')} |`);
    lines.push(`| sum of those logits (same input everywhere) | ${reports.map((r) => r.rounds[0]!.logits_sum!.toFixed(3)).join(' | ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 7;
const childAt = args.indexOf('--child');
if (childAt >= 0) {
  await child(args[childAt + 1] ?? 'simd');
} else {
  await parent(rounds);
}
