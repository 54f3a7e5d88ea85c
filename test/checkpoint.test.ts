import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { AdamW } from '../src/train/adamw.js';
import {
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  readCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from '../src/train/checkpoint.js';
import { CheckpointKeyError, FileFormatError, FileNotFoundError, ShapeError } from '../src/errors.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { scratchFolders } from './helpers/scratch.js';

await tf.setBackend('wasm');

const tempDir = scratchFolders('clipseg-ckpt-');

function variable(values: number[], shape: number[]): tf.Variable {
  const t = tf.tensor(values, shape);
  const v = tf.variable(t);
  t.dispose();
  return v;
}

function makeParams(offset: number): Map<string, tf.Variable> {
  return new Map([
    ['decoder.film_mul.weight', variable([1, 2, 3, 4, 5, 6].map((x) => x + offset), [2, 3])],
    ['decoder.film_mul.bias', variable([0.5, -0.5].map((x) => x + offset), [2])],
  ]);
}

function stepOnce(params: Map<string, tf.Variable>, opt: AdamW, scale: number): void {
  const grads = Object.fromEntries([...params].map(([k, v]) => [k, tf.fill(v.shape, scale)]));
  opt.applyGradients(grads, 1e-2);
  tf.dispose(Object.values(grads));
}

const config = { model_type: 'clipseg', reduce_dim: 4 };

test('a checkpoint round-trips parameters, moments, step, config and state exactly', async () => {
  const dir = await tempDir();
  const params = makeParams(0);
  const opt = new AdamW(params);
  stepOnce(params, opt, 0.3);
  stepOnce(params, opt, -0.7);
  const state = { rng: [1, 2, 3, 4], data: { epoch: 1, position: 17 } };
  const file = await saveCheckpoint(dir, { step: 2, params, optimizer: opt, config, state }, { keep: 3 });
  assert.equal(path.basename(file), 'ckpt-000002.safetensors');
  assert.equal(await latestCheckpoint(dir), file);

  const ckpt = await readCheckpoint(file);
  assert.equal(ckpt.step, 2);
  assert.deepEqual(ckpt.config, config);
  assert.deepEqual(ckpt.state, state);
  assert.equal(ckpt.optimizer.step, 2);
  const header = await readSafetensors(file);
  assert.deepEqual(header.keys().sort(), [
    'decoder.film_mul.bias',
    'decoder.film_mul.weight',
    'optim.m.decoder.film_mul.bias',
    'optim.m.decoder.film_mul.weight',
    'optim.v.decoder.film_mul.bias',
    'optim.v.decoder.film_mul.weight',
  ]);

  const before = tf.memory().numTensors;
  const other = makeParams(100);
  const otherOpt = new AdamW(other);
  restoreCheckpoint(ckpt, other, otherOpt);
  for (const [k, v] of params) assert.deepEqual(other.get(k)!.dataSync(), v.dataSync(), k);
  assert.equal(otherOpt.step, 2);
  // The restored optimizer must continue exactly like the original one.
  stepOnce(params, opt, 0.1);
  stepOnce(other, otherOpt, 0.1);
  for (const [k, v] of params) assert.deepEqual(other.get(k)!.dataSync(), v.dataSync(), k);
  otherOpt.dispose();
  tf.dispose([...other.values()]);
  assert.equal(tf.memory().numTensors, before);
  opt.dispose();
  tf.dispose([...params.values()]);
});

test('only the last K checkpoints are kept and latest follows the newest', async () => {
  const dir = await tempDir();
  const params = makeParams(0);
  const opt = new AdamW(params);
  for (const step of [10, 20, 30, 40]) {
    stepOnce(params, opt, step / 100);
    await saveCheckpoint(dir, { step, params, optimizer: opt, config, state: {} }, { keep: 2 });
  }
  const kept = await listCheckpoints(dir);
  assert.deepEqual(kept.map((c) => c.step), [30, 40]);
  assert.equal(await latestCheckpoint(dir), path.join(dir, checkpointName(40)));
  const names = await fs.readdir(dir);
  assert.ok(!names.some((n) => n.includes('.tmp-')), `no temporary files left: ${names.join(', ')}`);
  opt.dispose();
  tf.dispose([...params.values()]);
});

test('restore refuses a checkpoint whose keys or shapes differ from the model, before touching anything', async () => {
  const dir = await tempDir();
  const params = makeParams(0);
  const opt = new AdamW(params);
  const file = await saveCheckpoint(dir, { step: 1, params, optimizer: opt, config, state: {} }, { keep: 1 });
  const ckpt = await readCheckpoint(file);

  const extra = new Map([...makeParams(5), ['decoder.reduces.0.weight', variable([1, 2], [1, 2])]]);
  const extraOpt = new AdamW(extra);
  assert.throws(
    () => restoreCheckpoint(ckpt, extra, extraOpt),
    (e) => e instanceof CheckpointKeyError && /missing trainable parameters: decoder\.reduces\.0\.weight/.test(e.message),
  );
  assert.deepEqual([...extra.get('decoder.film_mul.bias')!.dataSync()], [5.5, 4.5], 'nothing was written');

  const wrongShape = new Map([
    ['decoder.film_mul.weight', variable([1, 2, 3, 4, 5, 6], [3, 2])],
    ['decoder.film_mul.bias', variable([0, 0], [2])],
  ]);
  const wrongOpt = new AdamW(wrongShape);
  assert.throws(() => restoreCheckpoint(ckpt, wrongShape, wrongOpt), (e) => e instanceof ShapeError && /\[3, 2\]/.test(e.message) && /\[2, 3\]/.test(e.message));
  assert.equal(wrongOpt.step, 0);
  for (const o of [opt, extraOpt, wrongOpt]) o.dispose();
  tf.dispose([...params.values(), ...extra.values(), ...wrongShape.values()]);
});

test('malformed checkpoints and pointers raise typed errors naming the file', async () => {
  const dir = await tempDir();
  assert.equal(await latestCheckpoint(dir), undefined);
  assert.deepEqual(await listCheckpoints(path.join(dir, 'absent')), []);

  const plain = path.join(dir, 'plain.safetensors');
  await writeSafetensors(plain, { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
  await assert.rejects(readCheckpoint(plain), (e) => e instanceof FileFormatError && e.message.includes(plain) && /not a training checkpoint/.test(e.message));

  const noMoment = path.join(dir, 'nomoment.safetensors');
  await writeSafetensors(
    noMoment,
    { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } },
    { format: 'clipseg-tfjs-train-checkpoint', version: '1', step: '3', optimizer_step: '3', optimizer_steps: '{"w": 3}', config: '{}', state: '{}' },
  );
  await assert.rejects(readCheckpoint(noMoment), (e) => e instanceof FileFormatError && /optim\.m\.w/.test(e.message));

  await fs.writeFile(path.join(dir, 'latest'), 'not-a-checkpoint\n');
  await assert.rejects(latestCheckpoint(dir), (e) => e instanceof FileFormatError && /latest/.test(e.message));
  await fs.writeFile(path.join(dir, 'latest'), 'ckpt-000007.safetensors\n');
  await assert.rejects(latestCheckpoint(dir), (e) => e instanceof FileNotFoundError && /ckpt-000007/.test(e.message));
  await assert.rejects(readCheckpoint(path.join(dir, 'missing.safetensors')), FileNotFoundError);
});
