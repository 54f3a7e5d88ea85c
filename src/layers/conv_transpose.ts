/**
 * `nn.ConvTranspose2d` with stride = kernel and no padding (the only kind CLIPSeg uses), channels last.
 * Without overlap every input pixel writes its own k x k block: out[n, i*k+u, j*k+v, o] =
 * bias[o] + sum_c x[n, i, j, c] W[c, u, v, o], i.e. one matMul [N*H*W, C] x [C, k*k*O] and a reshuffle.
 *
 * The weight is stored [in, kh, kw, out] (PyTorch keeps [in, out, kh, kw]).
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError, UnsupportedError } from '../errors.js';
import type { ForwardContext } from './context.js';
import { linearProduct } from './product.js';
import type { Init, Parameter, ParameterScope } from './scope.js';

export interface ConvTranspose2dOptions {
  stride?: number;
  weightInit?: Init;
  biasInit?: Init;
}

export class ConvTranspose2d {
  readonly name: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(scope: ParameterScope, inChannels: number, outChannels: number, kernel: number, options: ConvTranspose2dOptions = {}) {
    this.name = scope.name;
    const stride = options.stride ?? kernel;
    if (stride !== kernel) {
      throw new UnsupportedError(`${this.name}: ConvTranspose2d supports stride = kernel only, got kernel ${kernel}, stride ${stride}`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernel = kernel;
    // PyTorch computes a transposed conv's fan_in from weight dim 1, i.e. out*k*k.
    const bound = 1 / Math.sqrt(outChannels * kernel * kernel);
    this.weight = scope.param('weight', [inChannels, kernel, kernel, outChannels], options.weightInit ?? { kind: 'uniform', bound });
    this.bias = scope.param('bias', [outChannels], options.biasInit ?? { kind: 'uniform', bound });
  }

  /** x: [N, H, W, C] -> [N, H*k, W*k, O]. */
  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, x, () => {
      const [n, h, w, c] = x.shape as [number, number, number, number];
      if (c !== this.inChannels) throw new ShapeError(`${this.name} input`, `[N, H, W, ${this.inChannels}]`, x.shape);
      const k = this.kernel;
      const o = this.outChannels;
      // [N, H, W, C] -> [N*H*W, C];  [C, k, k, O] -> [C, k*k*O]
      const blocks = linearProduct(x.reshape([n * h * w, c]) as tf.Tensor2D, this.weight.variable.reshape([c, k * k * o]) as tf.Tensor2D);
      // [N*H*W, k*k*O] -> [N*H, W, k, k*O] -> [N*H, k, W, k*O] (block rows interleave with input rows)
      const rows = tf.transpose(blocks.reshape([n * h, w, k, k * o]), [0, 2, 1, 3]);
      // [N*H, k, W, k*O] -> [N, H*k, W*k, O]
      return tf.add(rows.reshape([n, h * k, w * k, o]), this.bias.variable);
    }, true);
  }
}
