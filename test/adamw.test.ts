import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { AdamW } from '../src/train/adamw.js';
import { CosineSchedule } from '../src/train/schedule.js';
import { readSafetensors, type SafetensorsFile } from '../src/io/safetensors.js';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';

await tf.setBackend('wasm');

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'adamw', 'adamw.safetensors');
const fx = await readSafetensors(FIXTURE);
const meta = JSON.parse(fx.metadata.fixture!) as {
  lrs: number[];
  decay: string[];
  cosine: number[];
  warmup: number[];
  hyper: { lr: number; min_lr: number; weight_decay: number; betas: [number, number]; eps: number; steps: number };
};
const hyper = meta.hyper;
const names = fx.keys().filter((k) => k.startsWith('init.')).map((k) => k.slice('init.'.length));

function load(file: SafetensorsFile, key: string): tf.Tensor {
  return tf.tensor(file.getFloat32(key), file.info(key).shape, 'float32');
}

function variableOf(file: SafetensorsFile, key: string): tf.Variable {
  const value = load(file, key);
  const variable = tf.variable(value);
  value.dispose();
  return variable;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('AdamW matches torch.optim.AdamW (foreach=False) within 1e-6 over 3 steps, with the torch cosine rates', () => {
  const before = tf.memory().numTensors;
  const params = new Map(names.map((n) => [n, variableOf(fx, `init.${n}`)] as [string, tf.Variable]));
  const afterParams = tf.memory().numTensors;
  const opt = new AdamW(params, { beta1: hyper.betas[0], beta2: hyper.betas[1], eps: hyper.eps, weightDecay: hyper.weight_decay });
  const schedule = new CosineSchedule({ lr: hyper.lr, minLr: hyper.min_lr, steps: hyper.steps });
  const torchLrs = meta.lrs;
  assert.deepEqual(
    names.filter((n) => opt.decays(n)).sort(),
    [...meta.decay].sort(),
    'weight decay goes to rank >= 2 tensors only',
  );
  for (let t = 0; t < torchLrs.length; t++) {
    assert.ok(Math.abs(schedule.at(t) - torchLrs[t]!) < 1e-15, `lr at step ${t}`);
    const grads: Record<string, tf.Tensor> = {};
    for (const n of names) if (fx.has(`grad.${t}.${n}`)) grads[n] = load(fx, `grad.${t}.${n}`);
    opt.applyGradients(grads, schedule.at(t));
    tf.dispose(Object.values(grads));
    for (const n of names) {
      const diff = maxAbsDiff(params.get(n)!.dataSync() as Float32Array, fx.getFloat32(`param.${t}.${n}`));
      assert.ok(diff <= 1e-6, `${n} after step ${t}: max |diff| ${diff}`);
    }
  }
  assert.equal(opt.step, torchLrs.length);
  const state = opt.getState();
  assert.equal(state.steps.size, names.length);
  for (const n of names) assert.equal(state.steps.get(n), fx.has(`grad.1.${n}`) ? 3 : 2, `per-parameter step of ${n}`);
  for (const n of names) {
    assert.ok(maxAbsDiff(state.m.get(n)!, fx.getFloat32(`m.${n}`)) <= 1e-7, `m of ${n}`);
    assert.ok(maxAbsDiff(state.v.get(n)!, fx.getFloat32(`v.${n}`)) <= 1e-7, `v of ${n}`);
  }
  // Each step must leave exactly the parameters and the two moments per parameter alive.
  assert.equal(tf.memory().numTensors, afterParams + 2 * names.length);
  opt.dispose();
  for (const p of params.values()) p.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('AdamW state round-trips: restoring the state reproduces the following step bit for bit', () => {
  const make = (): Map<string, tf.Variable> => new Map(names.map((n) => [n, variableOf(fx, `init.${n}`)] as [string, tf.Variable]));
  const grads = (t: number): Record<string, tf.Tensor> =>
    Object.fromEntries(names.filter((n) => fx.has(`grad.${t}.${n}`)).map((n) => [n, load(fx, `grad.${t}.${n}`)]));
  const a = make();
  const optA = new AdamW(a);
  for (let t = 0; t < 2; t++) {
    const g = grads(t);
    optA.applyGradients(g, 1e-3);
    tf.dispose(Object.values(g));
  }
  const b = new Map(names.map((n) => [n, tf.variable(a.get(n)!)] as [string, tf.Variable]));
  const optB = new AdamW(b);
  optB.setState(optA.getState());
  assert.equal(optB.step, 2);
  const g = grads(2);
  optA.applyGradients(g, 5e-4);
  optB.applyGradients(g, 5e-4);
  tf.dispose(Object.values(g));
  for (const n of names) assert.deepEqual(b.get(n)!.dataSync(), a.get(n)!.dataSync(), n);
  optA.dispose();
  optB.dispose();
  tf.dispose([...a.values(), ...b.values()]);
});

test('AdamW rejects unknown or mis-shaped gradients and bad hyper-parameters with typed errors', () => {
  const w = tf.variable(tf.zeros([2, 3]));
  const opt = new AdamW([['w', w]]);
  const stray = tf.zeros([1]);
  assert.throws(() => opt.applyGradients({ x: stray }, 1e-3), (e) => e instanceof InvalidArgumentError && /'x' is not a parameter/.test(e.message));
  stray.dispose();
  const bad = tf.zeros([3, 2]);
  assert.throws(() => opt.applyGradients({ w: bad }, 1e-3), (e) => e instanceof ShapeError && /\[2, 3\]/.test(e.message) && /\[3, 2\]/.test(e.message));
  assert.throws(() => opt.applyGradients({ w: bad }, Number.NaN), InvalidArgumentError);
  assert.throws(() => new AdamW([['w', w]], { beta1: 1 }), (e) => e instanceof InvalidArgumentError && /beta1/.test(e.message));
  assert.throws(() => new AdamW([['w', w], ['w', w]]), (e) => e instanceof InvalidArgumentError && /duplicate/.test(e.message));
  assert.throws(
    () => opt.setState({ step: 1, steps: new Map([['w', 1]]), m: new Map([['w', new Float32Array(5)]]), v: new Map([['w', new Float32Array(6)]]) }),
    ShapeError,
  );
  assert.equal(opt.step, 0);
  bad.dispose();
  opt.dispose();
  w.dispose();
});

test('CosineSchedule equals torch CosineAnnealingLR and SequentialLR(LinearLR, CosineAnnealingLR)', () => {
  const cosine = meta.cosine;
  const schedule = new CosineSchedule({ lr: 1e-3, minLr: 1e-4, steps: 20 });
  cosine.forEach((lr, t) => assert.ok(Math.abs(schedule.at(t) - lr) < 1e-15, `cosine step ${t}: ${schedule.at(t)} vs ${lr}`));
  assert.ok(Math.abs(schedule.at(20) - 1e-4) < 1e-18, 'reaches eta_min at T_max');
  const warm = meta.warmup;
  const warmSchedule = new CosineSchedule({ lr: 1e-3, minLr: 1e-4, steps: 20, warmupSteps: 5 });
  warm.forEach((lr, t) => assert.ok(Math.abs(warmSchedule.at(t) - lr) < 1e-15, `warm-up step ${t}: ${warmSchedule.at(t)} vs ${lr}`));
});

test('CosineSchedule validates its arguments', () => {
  assert.throws(() => new CosineSchedule({ lr: 0, minLr: 0, steps: 10 }), (e) => e instanceof InvalidArgumentError && /lr/.test(e.message));
  assert.throws(() => new CosineSchedule({ lr: 1e-3, minLr: 1e-2, steps: 10 }), /minLr/);
  assert.throws(() => new CosineSchedule({ lr: 1e-3, minLr: 1e-4, steps: 2.5 }), /steps/);
  assert.throws(() => new CosineSchedule({ lr: 1e-3, minLr: 1e-4, steps: 10, warmupSteps: 10 }), /warmupSteps/);
  assert.throws(() => new CosineSchedule({ lr: 1e-3, minLr: 1e-4, steps: 10 }).at(-1), InvalidArgumentError);
});
