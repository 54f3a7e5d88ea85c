/**
 * One attention head over a long sequence, softmax(q k^T + mask) v, with a gradient that keeps only q, k^T and v.
 *
 * Differentiated op by op, each (batch element, head) pair left its [T, T] scores, probabilities, their gradients
 * and a transposed copy alive until the whole backward pass ended, because tfjs frees no intermediate gradient
 * before then: six 485 x 485 matrices per pair, 0.5 GB of a batch-8 decoder step's peak (measured). Here the
 * backward recomputes the probabilities (one [T, Dh] x [Dh, T] product, small beside the step) and frees them with
 * everything else it makes before returning.
 */
import * as tf from '@tensorflow/tfjs';
import { linearProduct, productGradients } from './product.js';

/** softmax(q kT + mask) over the keys: q [T, Dh] (already scaled), kT [Dh, T], mask [T, T] additive -> [T, T]. */
export function headProbabilities(q: tf.Tensor2D, kT: tf.Tensor2D, mask: tf.Tensor | undefined): tf.Tensor2D {
  const scores = linearProduct(q, kT);
  return tf.softmax(mask === undefined ? scores : tf.add(scores, mask)) as tf.Tensor2D;
}

/**
 * The backward runs on the upstream gradient times 2^40 and scales its results back. A trained head is peaked: most
 * of its probabilities are zero or below 1e-30, and their products with the gradient of a mean loss (1e-6 and less)
 * fall below float32's smallest normal number. WebAssembly has no flush-to-zero mode, so every such subnormal operand
 * or result takes the CPU's slow path: 4.4 times the time of the same backward scaled, on peaked heads of the demo
 * model's decoder size (`benchmarks/probes/subnormal.ts`); a full fine-tuning step of the demo model at 224 px went
 * from 12.1 to 8.3 s. Scaling by a power of two changes no rounding of a normal number, so the gradients are the same
 * floats wherever no subnormal occurred. They would overflow only for upstream gradients beyond about 1e20.
 */
const SCALE = 2 ** 40;
const UNSCALE = 2 ** -40;

/** q [T, Dh], kT [Dh, T], v [T, Dh] -> [T, Dh]. The mask is a constant: no gradient flows into it. */
export function attendHead(q: tf.Tensor2D, kT: tf.Tensor2D, v: tf.Tensor2D, mask: tf.Tensor | undefined): tf.Tensor2D {
  const head = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    // The mask is saved too: the caller's scope frees its own handle once the forward pass is over.
    save(mask === undefined ? [qi, ki, vi] : [qi, ki, vi, mask]);
    return {
      value: linearProduct(headProbabilities(qi, ki, mask), vi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [qs, ks, vs, savedMask] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor | undefined];
          const p = headProbabilities(qs, ks, savedMask);
          // Both products are differentiated as in product.ts, with explicitly transposed operands: O = P v, S = q kT.
          const [dp, dv] = productGradients(tf.mul(dy, SCALE), p, vs);
          // The softmax's backward along each row: dS = P * (dP - sum_j dP_j P_j).
          const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), 1, true)));
          const [dq, dk] = productGradients(ds, qs, ks);
          return [tf.mul(dq, UNSCALE), tf.mul(dk, UNSCALE), tf.mul(dv, UNSCALE)];
        }),
    };
  });
  return head(q, kT, v) as tf.Tensor2D;
}
