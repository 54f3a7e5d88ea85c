/**
 * The product `x W (+ b)` of every weight layer (Linear, and the matMul-based convolutions), with a gradient written
 * for tfjs-wasm. tfjs differentiates a matMul with `matMul(dy, W, false, true)` and `matMul(x, dy, true, false)`;
 * the wasm kernel runs any product with a transposed operand in a naive loop instead of XNNPACK, about 10 times
 * slower (`benchmarks/probes/linear_backward.ts`). Transposing the operand first with the Transpose kernel keeps
 * both backward products on XNNPACK. The forward is the plain fused product, so inference is unaffected.
 */
import * as tf from '@tensorflow/tfjs';
import { useWasmKernels } from './wasm_kernels.js';

interface Product {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

/**
 * For y = x W: dx = dy W^T and dW = x^T dy, each as a plain 2-D product. The scope frees the transposed operands at
 * once: tfjs calls a custom gradient outside any scope of its own, so they would otherwise live until the whole
 * backward pass ends (about 250 MB of the peak of a batch-8 decoder step, measured).
 */
export function productGradients(dy: tf.Tensor, x: tf.Tensor, w: tf.Tensor): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    // [in, out] -> [out, in]
    const dx = tf.matMul(dy, tf.transpose(w));
    // [N, in] -> [in, N]
    const dw = tf.matMul(tf.transpose(x), dy);
    return [dx, dw] as [tf.Tensor, tf.Tensor];
  });
}

function backward(dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] {
  return productGradients(dy, saved[0]!, saved[1]!);
}

const withBias = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]): Product => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x, b: w, bias: b }),
    gradFunc: (dy, saved) => [...backward(dy, saved), tf.sum(dy, 0)],
  };
});

const withoutBias = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]): Product => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return { value: tf.matMul(x, w), gradFunc: backward };
});

/**
 * x: [N, in], w: [in, out], bias: [out] -> [N, out]. The gradient also returns dx when x needs none (frozen
 * activations): tfjs computes a custom gradient for every input at once.
 */
export function linearProduct(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor): tf.Tensor2D {
  useWasmKernels();
  return (bias === undefined ? withoutBias(x, w) : withBias(x, w, bias)) as tf.Tensor2D;
}
