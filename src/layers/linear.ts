/**
 * `nn.Linear` with the weight stored `[in, out]`, so the product is a plain `matMul(x, W)`: tfjs-wasm runs
 * `transposeB` products about 14 times slower. The backward products avoid them too (`linearProduct`).
 */
import type * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from './context.js';
import { linearProduct } from './product.js';
import type { Init, Parameter, ParameterScope } from './scope.js';

export interface LinearOptions {
  bias?: boolean;
  weightInit?: Init;
  biasInit?: Init;
}

export class Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(scope: ParameterScope, inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    this.name = scope.name;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    // PyTorch's default Linear init is U(-1/sqrt(in), 1/sqrt(in)); transformers zeroes every Linear bias.
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = scope.param('weight', [inFeatures, outFeatures], options.weightInit ?? { kind: 'uniform', bound });
    this.bias = options.bias === false ? undefined : scope.param('bias', [outFeatures], options.biasInit ?? { kind: 'zeros' });
  }

  /** x: [..., in] -> [..., out]. */
  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, x, () => {
      const leading = x.shape.slice(0, -1);
      // [..., in] -> [N, in]: one 2-D product whatever the batch rank.
      const flat = x.reshape([-1, this.inFeatures]) as tf.Tensor2D;
      const y = linearProduct(flat, this.weight.variable as tf.Tensor2D, this.bias?.variable);
      // [N, out] -> [..., out]
      return y.reshape([...leading, this.outFeatures]);
    });
  }
}
