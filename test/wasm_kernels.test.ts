import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useWasmKernels } from '../src/layers/wasm_kernels.js';

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

// tf.memory().numBytes counts every handle's bytes, shared or not; numDataBuffers counts the memory blocks.
test('on wasm a clone shares its source memory (as on cpu), and outlives the source', () => {
  useWasmKernels();
  const before = tf.memory();
  const source = tf.tensor1d([1.5, -2, 3]);
  const copy = tf.clone(source);
  assert.equal(tf.memory().numDataBuffers, before.numDataBuffers + 1, 'one block for both handles');
  assert.equal(tf.memory().numTensors, before.numTensors + 2);
  source.dispose();
  assert.deepEqual([...copy.dataSync()], [1.5, -2, 3]);
  copy.dispose();
  assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
  assert.equal(tf.memory().numTensors, before.numTensors);
});

test('tensors saved for a gradient take no memory of their own', () => {
  useWasmKernels();
  const x = tf.randomNormal([64, 64]);
  const before = tf.memory().numTensors;
  let blocks = 0;
  const grad = tf.grad((t: tf.Tensor) => {
    const start = tf.memory().numDataBuffers;
    // sigmoid saves its output and square its input (the same tensor); copies would be two more blocks.
    const y = tf.sum(tf.square(tf.sigmoid(t)));
    blocks = tf.memory().numDataBuffers - start;
    return y;
  })(x);
  assert.equal(blocks, 3, 'the outputs of sigmoid, square and sum');
  // d/dx sum(sigmoid(x)^2) = 2 s^2 (1 - s)
  const worst = tf.tidy(() => {
    const s = tf.sigmoid(x);
    return tf.max(tf.abs(tf.sub(grad, tf.mul(tf.mul(2, tf.square(s)), tf.sub(1, s))))).dataSync()[0]!;
  });
  assert.ok(worst < 1e-6, `max |error| ${worst}`);
  tf.dispose([x, grad]);
  assert.equal(tf.memory().numTensors, before - 1);
});

test('unstack along every axis gives the pieces index arithmetic gives, for each dtype, each piece in its own memory', () => {
  useWasmKernels();
  const shape = [3, 4, 5];
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, (_, i) => i * 7 - 40);
  const before = tf.memory();
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    const raw = dtype === 'bool' ? values.map((v) => (v % 3 === 0 ? 1 : 0)) : values;
    for (const axis of [0, 1, 2, -1, -3]) {
      const x = tf.tensor(raw, shape, dtype);
      const a = axis < 0 ? axis + shape.length : axis;
      const pieces = tf.unstack(x, axis);
      assert.equal(pieces.length, shape[a]);
      const strides = [shape[1]! * shape[2]!, shape[2]!, 1];
      x.dispose();
      for (const [i, piece] of pieces.entries()) {
        const pieceShape = shape.filter((_, d) => d !== a);
        assert.deepEqual(piece.shape, pieceShape, `${dtype}, axis ${axis}: shape`);
        assert.equal(piece.dtype, dtype);
        const expected: number[] = [];
        for (let p = 0; p < pieceShape[0]!; p++) {
          for (let q = 0; q < pieceShape[1]!; q++) {
            const index = [p, q];
            index.splice(a, 0, i);
            expected.push(raw[index[0]! * strides[0]! + index[1]! * strides[1]! + index[2]!]!);
          }
        }
        assert.deepEqual([...piece.dataSync()], expected, `${dtype}, axis ${axis}, piece ${i}`);
      }
      tf.dispose(pieces);
    }
  }
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
});

test('the gradient through unstack stacks the pieces\' gradients back', () => {
  useWasmKernels();
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  // d/dx sum_i sum(piece_i * (i + 1)) along axis 1: column j gets j + 1.
  const grad = tf.grad((t: tf.Tensor) => tf.addN(tf.unstack(t, 1).map((p, i) => tf.sum(tf.mul(p, i + 1)))))(x);
  assert.deepEqual([...grad.dataSync()], [1, 2, 3, 1, 2, 3]);
  tf.dispose([x, grad]);
});
