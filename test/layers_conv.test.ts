/** Conv2d and ConvTranspose2d written as matMuls, against tfjs' own convolution kernels and their gradients. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ShapeError, UnsupportedError } from '../src/errors.js';
import { ForwardContext } from '../src/layers/context.js';
import { Conv2d } from '../src/layers/conv.js';
import { ConvTranspose2d } from '../src/layers/conv_transpose.js';
import { ParameterRegistry } from '../src/layers/scope.js';
import { assertClose } from './helpers/assert_close.js';
import { useBackend } from './helpers/backends.js';

function build<T>(make: (registry: ParameterRegistry) => T): { module: T; registry: ParameterRegistry } {
  const registry = new ParameterRegistry();
  const module = make(registry);
  registry.initialize(7);
  return { module, registry };
}

/** d(sum(f(x) * probe)) w.r.t. x, weight and bias: the module's (through its variables) against the reference op's. */
function compareGradients(
  x: tf.Tensor,
  probe: tf.Tensor,
  [w, b]: tf.Variable[],
  ours: (x: tf.Tensor) => tf.Tensor,
  reference: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): void {
  const xv = tf.variable(x);
  const got = tf.variableGrads(() => tf.sum(tf.mul(ours(xv), probe)) as tf.Scalar, [xv, w!, b!]);
  const want = tf.grads((a, c, d) => tf.sum(tf.mul(reference(a!, c!, d!), probe)))([x, w!, b!]);
  [xv, w!, b!].forEach((v, i) => assertClose(got.grads[v.name]!, want[i]!, `gradient ${i}`, { atol: 1e-4 }));
  tf.dispose([xv, got.value, ...Object.values(got.grads), ...want]);
}

describe('convolutions as matMuls (cpu, where tfjs has every conv gradient kernel)', () => {
  before(() => useBackend('cpu'));

  test('3x3, stride 1, zero padding 1 equals tf.conv2d "same", values and gradients', () => {
    const { module: conv, registry } = build((r) => new Conv2d(r.root('head'), 5, 4, 3, { padding: 1 }));
    const x = tf.randomNormal([2, 6, 6, 5], 0, 1, 'float32', 1);
    const probe = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 2);
    const reference = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.add(tf.conv2d(input as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b);
    const w = conv.weight.variable;
    const b = conv.bias!.variable;
    const y = tf.tidy(() => conv.forward(x, new ForwardContext()));
    assertClose(y, tf.tidy(() => reference(x, w, b)), 'forward', { atol: 1e-5 });
    compareGradients(x, probe, [w, b], (input) => conv.forward(input, new ForwardContext()), reference);
    tf.dispose([x, probe, y]);
    registry.dispose();
  });

  test('stride = kernel, no padding (patch embedding) equals tf.conv2d "valid"', () => {
    const { module: conv, registry } = build((r) => new Conv2d(r.root('patch_embedding'), 3, 6, 4, { stride: 4, bias: false }));
    const x = tf.randomNormal([2, 8, 12, 3], 0, 1, 'float32', 3);
    const y = tf.tidy(() => conv.forward(x, new ForwardContext()));
    assert.deepEqual(y.shape, [2, 2, 3, 6]);
    assertClose(y, tf.tidy(() => tf.conv2d(x as tf.Tensor4D, conv.weight.variable as tf.Tensor4D, 4, 'valid')), 'forward', { atol: 1e-5 });
    const ragged = tf.zeros([1, 9, 8, 3]);
    assert.throws(() => conv.forward(ragged, new ForwardContext()), (e: unknown) => e instanceof ShapeError && /patch_embedding input: expected height and width multiples of 4, got \[1, 9, 8, 3\]/.test(e.message));
    tf.dispose([x, y, ragged]);
    registry.dispose();
  });

  test('ConvTranspose2d with stride = kernel equals tf.conv2dTranspose, values and gradients', () => {
    const { module: convT, registry } = build((r) => new ConvTranspose2d(r.root('up'), 4, 3, 2));
    const x = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 4);
    const probe = tf.randomNormal([2, 6, 10, 3], 0, 1, 'float32', 5);
    // Stored [in, kh, kw, out]; tf.conv2dTranspose takes [kh, kw, out, in].
    const reference = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.add(tf.conv2dTranspose(input as tf.Tensor4D, tf.transpose(w, [1, 2, 3, 0]) as tf.Tensor4D, [2, 6, 10, 3], 2, 'valid'), b);
    const w = convT.weight.variable;
    const b = convT.bias.variable;
    assertClose(tf.tidy(() => convT.forward(x, new ForwardContext())), tf.tidy(() => reference(x, w, b)), 'forward', { atol: 1e-5 });
    compareGradients(x, probe, [w, b], (input) => convT.forward(input, new ForwardContext()), reference);
    tf.dispose([x, probe]);
    registry.dispose();
  });

  test('unsupported geometries and wrong channel counts are refused', () => {
    const registry = new ParameterRegistry();
    assert.throws(() => new Conv2d(registry.root('a'), 3, 3, 3, { stride: 2, padding: 1 }), (e: unknown) => e instanceof UnsupportedError && /a: Conv2d supports stride 1 or stride = kernel without padding, got stride 2/.test(e.message));
    assert.throws(() => new ConvTranspose2d(registry.root('b'), 3, 3, 4, { stride: 2 }), (e: unknown) => e instanceof UnsupportedError && /b: ConvTranspose2d supports stride = kernel only/.test(e.message));
    const conv = new ConvTranspose2d(registry.root('c'), 3, 1, 2);
    registry.initialize();
    const x = tf.zeros([1, 2, 2, 5]);
    assert.throws(() => conv.forward(x, new ForwardContext()), (e: unknown) => e instanceof ShapeError && /c input: expected \[N, H, W, 3\], got \[1, 2, 2, 5\]/.test(e.message));
    x.dispose();
    registry.dispose();
  });
});
