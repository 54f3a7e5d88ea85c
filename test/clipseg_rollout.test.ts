import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attentionRollout, clsAttentionMaps, gridSide, rolloutClsMap, tokenNormMap } from '../src/inspect/rollout.js';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';

before(async () => {
  await tf.setBackend('wasm');
});

/** Row-stochastic random attention [H, T, T] from a seeded generator. */
function randomAttention(heads: number, tokens: number, seed: number): number[][][] {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 + 0.01;
  };
  return Array.from({ length: heads }, () =>
    Array.from({ length: tokens }, () => {
      const row = Array.from({ length: tokens }, next);
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((v) => v / sum);
    }),
  );
}

/** The rollout written out directly from the paper's definition, in float64. */
function referenceRollout(layers: number[][][][]): number[][] {
  const t = layers[0]![0]!.length;
  let rolled: number[][] | undefined;
  for (const heads of layers) {
    const a = Array.from({ length: t }, (_, i) =>
      Array.from({ length: t }, (_, j) => heads.reduce((sum, h) => sum + h[i]![j]!, 0) / heads.length + (i === j ? 1 : 0)),
    );
    const norm = a.map((row) => {
      const s = row.reduce((x, y) => x + y, 0);
      return row.map((v) => v / s);
    });
    rolled =
      rolled === undefined
        ? norm
        : norm.map((row) => Array.from({ length: t }, (_, j) => row.reduce((sum, v, k) => sum + v * rolled![k]![j]!, 0)));
  }
  return rolled!;
}

test('attention rollout equals the definition (mean heads, + identity, renormalise, multiply)', () => {
  const layers = [randomAttention(3, 5, 1), randomAttention(3, 5, 2), randomAttention(3, 5, 3)];
  const before = tf.memory().numTensors;
  const inputs = layers.map((l) => tf.tensor4d([l.flat(2)].flat(), [1, 3, 5, 5]));
  const rolled = attentionRollout(inputs);
  const got = rolled.arraySync()[0]!;
  const want = referenceRollout(layers);
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) assert.ok(Math.abs(got[i]![j]! - want[i]![j]!) < 1e-6, `rollout[${i}][${j}]`);
    assert.ok(Math.abs(got[i]!.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'rows stay stochastic');
  }
  const map = rolloutClsMap(rolled);
  assert.deepEqual(map.shape, [1, 2, 2]);
  const flat = Array.from(map.dataSync());
  flat.forEach((v, k) => assert.ok(Math.abs(v - want[0]![k + 1]!) < 1e-6));
  tf.dispose([...inputs, rolled, map]);
  assert.equal(tf.memory().numTensors, before);
});

test('CLS attention maps take row 0 over the patches, per head and their mean', () => {
  const heads = randomAttention(2, 10, 7);
  const attn = tf.tensor4d(heads.flat(2), [1, 2, 10, 10]);
  const maps = clsAttentionMaps(attn);
  assert.deepEqual(maps.shape, [1, 3, 3, 3]);
  const data = maps.arraySync()[0]!;
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      const k = 1 + r * 3 + c;
      assert.ok(Math.abs(data[0]![r]![c]! - heads[0]![0]![k]!) < 1e-7);
      assert.ok(Math.abs(data[1]![r]![c]! - heads[1]![0]![k]!) < 1e-7);
      assert.ok(Math.abs(data[2]![r]![c]! - (heads[0]![0]![k]! + heads[1]![0]![k]!) / 2) < 1e-7);
    }
  }
  tf.dispose([attn, maps]);
});

test('token norm map drops CLS and lays the L2 norms out row-major', () => {
  const hidden = tf.tensor3d([[[9, 9], [3, 4], [0, 1], [6, 8], [1, 0]]]);
  const map = tokenNormMap(hidden);
  assert.deepEqual(Array.from(map.dataSync()), [5, 1, 10, 1]);
  tf.dispose([hidden, map]);
});

test('rollout inputs of the wrong shape are rejected with typed errors', () => {
  assert.throws(() => gridSide(11), InvalidArgumentError);
  assert.throws(() => attentionRollout([]), InvalidArgumentError);
  const bad = tf.zeros([1, 2, 5, 4]);
  assert.throws(() => attentionRollout([bad]), ShapeError);
  const a = tf.zeros([1, 2, 5, 5]);
  const b = tf.zeros([1, 2, 10, 10]);
  assert.throws(() => attentionRollout([a, b]), ShapeError);
  tf.dispose([bad, a, b]);
});
