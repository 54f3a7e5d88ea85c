/** `nn.LayerNorm` over the last axis: biased variance, eps inside the square root, affine. */
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from './context.js';
import type { Parameter, ParameterScope } from './scope.js';

export class LayerNorm {
  readonly name: string;
  readonly size: number;
  readonly eps: number;
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(scope: ParameterScope, size: number, eps: number) {
    this.name = scope.name;
    this.size = size;
    this.eps = eps;
    this.weight = scope.param('weight', [size], { kind: 'ones' });
    this.bias = scope.param('bias', [size], { kind: 'zeros' });
  }

  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    // The temporaries, four of the input's size, are freed here instead of at the end of the encoder layer.
    return ctx.module(this.name, x, () =>
      tf.tidy(() => {
        const mean = tf.mean(x, -1, true);
        const centered = tf.sub(x, mean);
        const variance = tf.mean(tf.square(centered), -1, true);
        const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, this.eps)));
        return tf.add(tf.mul(normalized, this.weight.variable), this.bias.variable);
      }),
    );
  }
}
