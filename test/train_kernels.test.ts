import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../src/train/wasm_kernels.js';

await tf.setBackend('wasm');

test('the gradient of gather (an embedding lookup) works on wasm and sums repeated ids', () => {
  const before = tf.memory().numTensors;
  const table = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
  const ids = tf.tensor2d([[3, 1, 3]], [1, 3], 'int32');
  const upstream = tf.tensor3d([[[1, 10], [100, 1000], [2, 20]]]);
  // d/dtable sum(gather(table, ids) * upstream): row 3 gets upstream rows 0 and 2, row 1 gets row 1, rows 0 and 2 nothing.
  const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), upstream)))(table);
  assert.deepEqual([...grad.dataSync()], [0, 0, 100, 1000, 0, 0, 3, 30]);
  tf.dispose([table, ids, upstream, grad]);
  assert.equal(tf.memory().numTensors, before);
});

test('unsortedSegmentSum drops out-of-range ids and handles inner dimensions', () => {
  const x = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 2, 2]);
  const ids = tf.tensor1d([2, -1, 2], 'int32');
  const out = tf.unsortedSegmentSum(x, ids, 3);
  assert.deepEqual(out.shape, [3, 2, 2]);
  assert.deepEqual([...out.dataSync()], [0, 0, 0, 0, 0, 0, 0, 0, 10, 12, 14, 16]);
  tf.dispose([x, ids, out]);
});
