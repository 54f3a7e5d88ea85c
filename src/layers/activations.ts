/** The activations transformers' `ACT2FN` maps the config's `hidden_act` names to. */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';

export type Activation = (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const QUICK_GELU_ALPHA = 1.702;

/**
 * x * sigmoid(1.702 x), CLIP's approximation (not erf GELU), with a gradient that keeps x alone. Its temporaries
 * are the size of the MLP's widest tensor; differentiated op by op, tfjs kept the sigmoid and two intermediate
 * gradients until the end of the backward pass (it frees no intermediate gradient before then): in full
 * fine-tuning of the CIDAS architecture at batch 1, 241 MB of the peak (measured). The backward recomputes
 * sigmoid(1.702 x).
 */
export const quickGelu: Activation = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.mul(x, tf.sigmoid(tf.mul(x, QUICK_GELU_ALPHA))),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs] = saved as [tf.Tensor];
        const s = tf.sigmoid(tf.mul(xs, QUICK_GELU_ALPHA));
        // d/dx [x s(a x)] = s + a x s (1 - s)
        return tf.mul(dy, tf.add(s, tf.mul(tf.mul(tf.mul(xs, QUICK_GELU_ALPHA), s), tf.sub(1, s))));
      }),
  };
}) as Activation;

export const relu: Activation = (x) => tf.relu(x);

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export const gelu: Activation = (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));

/** The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`). */
export const geluTanh: Activation = (x) =>
  tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI))));

const BY_NAME: Record<string, Activation> = {
  quick_gelu: quickGelu,
  relu,
  gelu,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
};

export function activationByName(name: string): Activation {
  const fn = BY_NAME[name];
  if (fn === undefined) {
    throw new ConfigError(`hidden_act: expected one of ${Object.keys(BY_NAME).join(', ')}, got '${name}'`);
  }
  return fn;
}
