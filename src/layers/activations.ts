/** The activations transformers' `ACT2FN` maps the config's `hidden_act` names to. */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';

export type Activation = (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * x * sigmoid(1.702 x), CLIP's approximation (not erf GELU). Its two temporaries, each the size of the MLP's widest
 * tensor, are freed here instead of at the end of the encoder layer.
 */
export const quickGelu: Activation = (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));

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
