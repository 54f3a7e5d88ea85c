/** The activations transformers' `ACT2FN` maps the config's `hidden_act` names to, each with its derivative. */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';

export interface Activation {
  readonly name: string;
  /** f(x), elementwise, with a gradient that keeps x alone. */
  readonly apply: (x: tf.Tensor) => tf.Tensor;
  /** f'(x), elementwise: the MLP's own gradient (`mlp.ts`) multiplies by it. */
  readonly derivative: (x: tf.Tensor) => tf.Tensor;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const QUICK_GELU_ALPHA = 1.702;
const GELU_TANH_CUBIC = 0.044715;

/**
 * Differentiated op by op, an activation's temporaries are the size of the MLP's widest tensor, and tfjs keeps them
 * and their gradients until the backward pass ends (it frees no intermediate gradient before then): for quick_gelu
 * in full fine-tuning of the CIDAS architecture at batch 1, 241 MB of the peak (measured). This gradient keeps x
 * alone and recomputes the rest.
 */
function activation(name: string, f: (x: tf.Tensor) => tf.Tensor, derivative: (x: tf.Tensor) => tf.Tensor): Activation {
  const apply = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x]);
    return {
      value: f(x),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => tf.mul(dy, derivative(saved[0]!))),
    };
  }) as (x: tf.Tensor) => tf.Tensor;
  return { name, apply, derivative };
}

/** x * sigmoid(1.702 x), CLIP's approximation (not erf GELU). */
export const quickGelu = activation(
  'quick_gelu',
  (x) => tf.mul(x, tf.sigmoid(tf.mul(x, QUICK_GELU_ALPHA))),
  (x) => {
    const s = tf.sigmoid(tf.mul(x, QUICK_GELU_ALPHA));
    // d/dx [x s(a x)] = s + a x s (1 - s)
    return tf.add(s, tf.mul(tf.mul(tf.mul(x, QUICK_GELU_ALPHA), s), tf.sub(1, s)));
  },
);

/** The derivative is tfjs's own for relu: 1 where x > 0, else 0. */
export const relu = activation('relu', (x) => tf.relu(x), (x) => tf.step(x));

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export const gelu = activation(
  'gelu',
  (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  // Phi(x) + x phi(x), phi the standard normal density
  (x) => tf.add(tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))), tf.mul(tf.mul(x, INV_SQRT_2PI), tf.exp(tf.mul(tf.square(x), -0.5)))),
);

/** The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`): 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
export const geluTanh = activation(
  'gelu_new',
  (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(geluTanhInner(x)))),
  (x) => {
    const t = tf.tanh(geluTanhInner(x));
    // 0.5 (1 + t) + 0.5 x (1 - t^2) u', u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    const du = tf.mul(tf.add(1, tf.mul(tf.square(x), 3 * GELU_TANH_CUBIC)), SQRT_2_OVER_PI);
    return tf.add(tf.mul(0.5, tf.add(1, t)), tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(t))), du));
  },
);

function geluTanhInner(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), GELU_TANH_CUBIC)), SQRT_2_OVER_PI);
}

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
