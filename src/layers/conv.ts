/**
 * `nn.Conv2d` on channels-last tensors, written as one matMul over gathered patches so that it needs no
 * convolution kernels: tfjs-wasm has no Conv2DBackpropFilter, and training the refined head must run there.
 * Two geometries are supported, the two CLIPSeg uses: non-overlapping patches (stride = kernel, no padding:
 * the patch embedding) and stride 1 with zero padding (the refined head's 3x3 conv).
 *
 * The weight is stored [kh, kw, in, out]; flattened to [kh*kw*in, out] it multiplies patches whose features are
 * ordered (row, column, channel).
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError, UnsupportedError } from '../errors.js';
import type { ForwardContext } from './context.js';
import { linearProduct } from './product.js';
import type { Init, Parameter, ParameterScope } from './scope.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  weightInit?: Init;
  biasInit?: Init;
}

export class Conv2d {
  readonly name: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: number;
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(scope: ParameterScope, inChannels: number, outChannels: number, kernel: number, options: Conv2dOptions = {}) {
    this.name = scope.name;
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernel = kernel;
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    const patchify = this.stride === kernel && this.padding === 0;
    if (!patchify && this.stride !== 1) {
      throw new UnsupportedError(`${this.name}: Conv2d supports stride 1 or stride = kernel without padding, got stride ${this.stride}`);
    }
    // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in = in*k*k.
    const bound = 1 / Math.sqrt(inChannels * kernel * kernel);
    this.weight = scope.param('weight', [kernel, kernel, inChannels, outChannels], options.weightInit ?? { kind: 'uniform', bound });
    this.bias = options.bias === false ? undefined : scope.param('bias', [outChannels], options.biasInit ?? { kind: 'uniform', bound });
  }

  /** x: [N, H, W, C] (channels last) -> [N, H', W', O]. */
  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, x, () => {
      const [n, h, w, c] = x.shape as [number, number, number, number];
      if (c !== this.inChannels) throw new ShapeError(`${this.name} input`, `[N, H, W, ${this.inChannels}]`, x.shape);
      const { patches, outH, outW } = this.stride === 1 ? this.gatherShifted(x, n, h, w, c) : this.gatherBlocks(x, n, h, w, c);
      const k = this.kernel;
      // [kh, kw, in, out] -> [kh*kw*in, out]
      const filter = this.weight.variable.reshape([k * k * c, this.outChannels]) as tf.Tensor2D;
      const y = linearProduct(patches, filter, this.bias?.variable);
      // [N*H'*W', O] -> [N, H', W', O]
      return y.reshape([n, outH, outW, this.outChannels]);
    }, true);
  }

  /** Non-overlapping k x k blocks: [N, H, W, C] -> [N*(H/k)*(W/k), k*k*C]. */
  private gatherBlocks(x: tf.Tensor, n: number, h: number, w: number, c: number) {
    const k = this.kernel;
    if (h % k !== 0 || w % k !== 0) {
      throw new ShapeError(`${this.name} input`, `height and width multiples of ${k}`, x.shape);
    }
    const outH = h / k;
    const outW = w / k;
    // [N, H, W, C] -> [N*H/k, k, W/k, k*C] (rows split into (block row, row in block); columns likewise)
    const split = x.reshape([n * outH, k, outW, k * c]);
    // [N*H/k, k, W/k, k*C] -> [N*H/k, W/k, k, k*C]
    const blocks = tf.transpose(split, [0, 2, 1, 3]);
    // -> [N*H/k*W/k, k*k*C]
    return { patches: blocks.reshape([n * outH * outW, k * k * c]) as tf.Tensor2D, outH, outW };
  }

  /** Stride-1 patches with zero padding: k*k shifted views concatenated on the channel axis. */
  private gatherShifted(x: tf.Tensor, n: number, h: number, w: number, c: number) {
    const k = this.kernel;
    const p = this.padding;
    const outH = h + 2 * p - k + 1;
    const outW = w + 2 * p - k + 1;
    if (outH <= 0 || outW <= 0) throw new ShapeError(`${this.name} input`, `spatial size of at least ${k - 2 * p}`, x.shape);
    const padded = p === 0 ? x : tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
    const shifted: tf.Tensor[] = [];
    for (let u = 0; u < k; u++) {
      for (let v = 0; v < k; v++) shifted.push(tf.slice(padded, [0, u, v, 0], [n, outH, outW, c]));
    }
    // k*k x [N, H', W', C] -> [N, H', W', k*k*C] -> [N*H'*W', k*k*C]
    const patches = (shifted.length === 1 ? shifted[0]! : tf.concat(shifted, 3)).reshape([n * outH * outW, k * k * c]);
    return { patches: patches as tf.Tensor2D, outH, outW };
  }
}
