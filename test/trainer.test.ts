import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { train, type MicroBatch, type TrainerOptions, type TrainingTask } from '../src/train/trainer.js';
import { latestCheckpoint, listCheckpoints, readCheckpoint } from '../src/train/checkpoint.js';
import { Rng } from '../src/train/rng.js';
import { TrainingError } from '../src/errors.js';
import { wasmTrapError } from './helpers/wasm_trap.js';
import { scratchFolders } from './helpers/scratch.js';

await tf.setBackend('wasm');

/**
 * A small regression task: y = tanh(x W1) W2 + b with noise. Sample j of the run is drawn from
 * Rng.derive(seed, 'sample', j), so micro-batch i of size B holds samples i*B .. i*B+B-1 whatever the accumulation.
 */
class ToyTask implements TrainingTask {
  readonly params: Map<string, tf.Variable>;
  poisonAt: number | undefined;
  /** Micro-batch whose loss throws this error, as a backend failure would. */
  failAt: { index: number; error: Error } | undefined;
  restored: Record<string, unknown> | undefined;

  constructor(
    private readonly seed: number,
    initSeed = seed,
  ) {
    const rng = Rng.derive(initSeed, 'init');
    const make = (shape: number[]): tf.Variable => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(Float32Array.from({ length: n }, () => 0.5 * rng.normal()), shape);
      const v = tf.variable(t);
      t.dispose();
      return v;
    };
    this.params = new Map([
      ['decoder.w1.weight', make([3, 8])],
      ['decoder.w2.weight', make([8, 1])],
      ['decoder.w2.bias', make([1])],
      ['decoder.unused.bias', make([2])],
    ]);
  }

  trainableParameters(): Map<string, tf.Variable> {
    return this.params;
  }

  async microBatch(index: number, size: number): Promise<MicroBatch> {
    const xs = new Float32Array(size * 3);
    const ys = new Float32Array(size);
    for (let j = 0; j < size; j++) {
      const rng = Rng.derive(this.seed, 'sample', index * size + j);
      for (let c = 0; c < 3; c++) xs[j * 3 + c] = rng.normal();
      ys[j] = Math.sin(xs[j * 3]!) + 0.5 * xs[j * 3 + 1]! * xs[j * 3 + 2]! + 0.05 * rng.normal();
    }
    if (this.poisonAt === index) ys[0] = Number.NaN;
    const x = tf.tensor2d(xs, [size, 3]);
    const y = tf.tensor2d(ys, [size, 1]);
    const p = this.params;
    const failure = this.failAt?.index === index ? this.failAt.error : undefined;
    return {
      size,
      loss: () => {
        if (failure !== undefined) throw failure;
        const h = tf.tanh(x.matMul(p.get('decoder.w1.weight')!));
        return h.matMul(p.get('decoder.w2.weight')!).add(p.get('decoder.w2.bias')!).sub(y).square().mean() as tf.Scalar;
      },
      dispose: () => tf.dispose([x, y]),
    };
  }

  configJson(): Record<string, unknown> {
    return { model_type: 'toy' };
  }

  state(): Record<string, unknown> {
    return { note: 'toy' };
  }

  restore(state: Record<string, unknown>): void {
    this.restored = state;
  }

  values(): Map<string, Float32Array> {
    return new Map([...this.params].map(([k, v]) => [k, v.dataSync() as Float32Array]));
  }

  dispose(): void {
    tf.dispose([...this.params.values()]);
  }
}

const tempDir = scratchFolders('clipseg-trainer-');

const BASE: Omit<TrainerOptions, 'outDir'> = {
  steps: 12,
  batchSize: 4,
  accumulate: 2,
  lr: 1e-2,
  minLr: 1e-3,
  warmupSteps: 2,
  seed: 7,
  checkpointEvery: 4,
  keepCheckpoints: 2,
};

function assertSameValues(a: Map<string, Float32Array>, b: Map<string, Float32Array>, message: string): void {
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${message}: ${k}`);
}

test('the loss falls, the log and plot are written, and the run leaves no tensors behind', async () => {
  const outDir = await tempDir();
  const task = new ToyTask(7);
  const before = tf.memory().numTensors;
  const result = await train(task, { ...BASE, steps: 60, lr: 3e-2, outDir });
  assert.equal(tf.memory().numTensors, before, 'only the task parameters remain');
  const first = result.history.slice(0, 5).reduce((s, r) => s + r.loss, 0) / 5;
  const last = result.history.slice(-5).reduce((s, r) => s + r.loss, 0) / 5;
  assert.ok(last < 0.5 * first, `loss falls: first ${first}, last ${last}`);
  const lines = (await fs.readFile(path.join(outDir, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 60);
  assert.deepEqual(lines.map((l) => l.step), Array.from({ length: 60 }, (_, i) => i + 1));
  for (const l of lines) for (const key of ['loss', 'lr', 'grad_norm', 'samples_per_s']) assert.equal(typeof l[key], 'number');
  assert.equal(lines[0].lr, 1.5e-2, 'first warm-up step');
  assert.equal(lines[59].samples, 60 * 8);
  assert.ok(existsSync(path.join(outDir, 'loss.png')));
  assert.deepEqual((await listCheckpoints(path.join(outDir, 'checkpoints'))).map((c) => c.step), [56, 60]);
  // The parameter that never receives a gradient is left exactly as initialised (torch skips a None grad).
  assert.deepEqual(task.values().get('decoder.unused.bias'), new ToyTask(7).values().get('decoder.unused.bias'));
  task.dispose();
});

test('the same seed gives bit-identical parameters; another seed does not', async () => {
  const a = new ToyTask(7);
  const b = new ToyTask(7);
  await train(a, { ...BASE, outDir: await tempDir() });
  await train(b, { ...BASE, outDir: await tempDir() });
  assertSameValues(a.values(), b.values(), 'same seed');
  const c = new ToyTask(8);
  await train(c, { ...BASE, seed: 8, outDir: await tempDir() });
  assert.notDeepEqual(c.values().get('decoder.w1.weight'), a.values().get('decoder.w1.weight'));
  for (const t of [a, b, c]) t.dispose();
});

test('N steps straight equal N/2 steps, resume, N/2 steps, bit for bit (including the log)', async () => {
  const straight = new ToyTask(7);
  const straightDir = await tempDir();
  await train(straight, { ...BASE, outDir: straightDir });

  const dir = await tempDir();
  const first = new ToyTask(7);
  const half = await train(first, { ...BASE, outDir: dir, stopAt: 6 });
  assert.equal(half.steps, 6);
  assert.equal(path.basename((await latestCheckpoint(path.join(dir, 'checkpoints')))!), 'ckpt-000006.safetensors');
  first.dispose();

  // A fresh process would rebuild the task from scratch: use a task with different initial values to prove
  // that everything comes from the checkpoint.
  const resumed = new ToyTask(7, 99);
  let resumedFrom = -1;
  const rest = await train(resumed, { ...BASE, outDir: dir, resume: true, onResume: (step) => (resumedFrom = step) });
  assert.equal(resumedFrom, 6);
  assert.equal(rest.startStep, 6);
  assert.deepEqual(resumed.restored, { note: 'toy' });
  assertSameValues(straight.values(), resumed.values(), 'resumed');

  const strip = (text: string): unknown[] =>
    text.trim().split('\n').map((l) => {
      const { samples_per_s: _s, elapsed_s: _e, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
  assert.deepEqual(
    strip(await fs.readFile(path.join(dir, 'log.jsonl'), 'utf8')),
    strip(await fs.readFile(path.join(straightDir, 'log.jsonl'), 'utf8')),
  );
  straight.dispose();
  resumed.dispose();
});

test('resuming with different run settings is refused', async () => {
  const dir = await tempDir();
  const task = new ToyTask(7);
  await train(task, { ...BASE, outDir: dir, stopAt: 4 });
  await assert.rejects(
    train(task, { ...BASE, lr: 2e-2, outDir: dir, resume: true }),
    (e) => e instanceof TrainingError && /lr 0\.01 -> 0\.02/.test(e.message),
  );
  task.dispose();
});

test('a NaN loss stops training with a TrainingError and keeps the last good checkpoint', async () => {
  const reference = new ToyTask(7);
  await train(reference, { ...BASE, outDir: await tempDir(), stopAt: 8 });

  const dir = await tempDir();
  const task = new ToyTask(7);
  // Step 10 (1-based) consists of micro-batches 18 and 19.
  task.poisonAt = 19;
  const before = tf.memory().numTensors;
  await assert.rejects(
    train(task, { ...BASE, outDir: dir }),
    (e) => e instanceof TrainingError && /step 10/.test(e.message) && /NaN/.test(e.message) && /ckpt-000008\.safetensors/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, before, 'no tensors leak on the error path');
  const latest = await latestCheckpoint(path.join(dir, 'checkpoints'));
  assert.equal(path.basename(latest!), 'ckpt-000008.safetensors');
  const ckpt = await readCheckpoint(latest!);
  for (const [key, values] of reference.values()) assert.deepEqual(ckpt.params.get(key)!.data, values, key);
  reference.dispose();
  task.dispose();
});

test('a wasm runtime failure mid-step stops training with a TrainingError that names the step, a remedy and the checkpoint', async () => {
  const dir = await tempDir();
  const task = new ToyTask(7);
  // Step 10 (1-based) consists of micro-batches 18 and 19.
  task.failAt = { index: 19, error: wasmTrapError('Aborted()') };
  const before = tf.memory().numTensors;
  await assert.rejects(train(task, { ...BASE, outDir: dir }), (e) =>
    e instanceof TrainingError &&
    e.cause === task.failAt!.error &&
    e.message.startsWith('training stopped at step 10: the wasm backend failed (Aborted()), most likely out of memory') &&
    /micro-batches of 4; lower the batch size and raise the accumulation/.test(e.message) &&
    /or lower the image size, in a new process \(the failed wasm backend stays unusable\); /.test(e.message) &&
    e.message.endsWith(`the last good checkpoint is ${path.join(dir, 'checkpoints', 'ckpt-000008.safetensors')}`));
  assert.equal(tf.memory().numTensors, before, 'no tensors leak on the error path');
  assert.equal(path.basename((await latestCheckpoint(path.join(dir, 'checkpoints')))!), 'ckpt-000008.safetensors');

  // An allocation past 4 GB can also surface as an out-of-bounds access, before any checkpoint.
  task.failAt = { index: 1, error: wasmTrapError('memory access out of bounds') };
  await assert.rejects(train(task, { ...BASE, outDir: await tempDir() }), (e) =>
    e instanceof TrainingError &&
    /^training stopped at step 1: the wasm backend failed \(memory access out of bounds\), most likely out of memory/.test(e.message) &&
    e.message.endsWith('in a new process (the failed wasm backend stays unusable); no checkpoint was written yet'));

  // At micro-batches of 1 the remedy cannot be a smaller batch.
  task.failAt = { index: 1, error: wasmTrapError('Aborted()') };
  await assert.rejects(train(task, { ...BASE, batchSize: 1, outDir: await tempDir() }), (e) =>
    e instanceof TrainingError &&
    e.message.includes(
      'on micro-batches of 1; micro-batches cannot be smaller; train fewer parameters (CLIP frozen, without --full-finetune), ' +
        'lower the image size, or train on a native backend (@tensorflow/tfjs-node, or -node-gpu for CUDA GPUs), whose memory ' +
        'is not capped at 4 GB, in a new process',
    ) &&
    !e.message.includes('lower the batch size'));

  // Any other error is the task's own and passes through unchanged.
  const other = new RangeError('bad index');
  task.failAt = { index: 1, error: other };
  await assert.rejects(train(task, { ...BASE, outDir: await tempDir() }), (e) => e === other);
  assert.equal(tf.memory().numTensors, before);
  task.dispose();
});

test('batch 4 x accumulate 2 follows the same trajectory as batch 8 x accumulate 1 (to float rounding)', async () => {
  const accumulated = new ToyTask(7);
  const whole = new ToyTask(7);
  await train(accumulated, { ...BASE, steps: 6, outDir: await tempDir() });
  await train(whole, { ...BASE, steps: 6, batchSize: 8, accumulate: 1, outDir: await tempDir() });
  for (const [key, values] of whole.values()) {
    const other = accumulated.values().get(key)!;
    values.forEach((v, i) => assert.ok(Math.abs(v - other[i]!) < 1e-5, `${key}[${i}]: ${v} vs ${other[i]}`));
  }
  accumulated.dispose();
  whole.dispose();
});
