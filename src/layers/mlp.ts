/**
 * `CLIPSegMLP`: fc1, activation, fc2.
 *
 * Unless a capture asks for its inner modules, the MLP runs as one op with its own gradient, which keeps x and
 * fc1's output alone and recomputes the activation. Differentiated layer by layer, tfjs kept fc1's output, the
 * activation's output and both their gradients, each [tokens, intermediate], until the backward pass ended (it frees
 * no intermediate gradient before then): in a batch-8 training step of the rd64-refined decoder, 14 tensors of
 * [3880, 2048], and the step's peak fell from 809 to 596 MB without them (benchmarks/README.md, change 9). The
 * forward runs the same kernels as the layer-by-layer path, so the outputs are the same floats.
 */
import * as tf from '@tensorflow/tfjs';
import type { Activation } from './activations.js';
import type { ForwardContext } from './context.js';
import { Linear } from './linear.js';
import { linearProduct, productGradients } from './product.js';
import type { ParameterScope } from './scope.js';

export interface MLPInit {
  fc1Std: number;
  fc2Std: number;
}

/** x: [N, hidden], w1: [hidden, intermediate], b1: [intermediate], w2: [intermediate, hidden], b2: [hidden] -> [N, hidden]. */
type FusedMLP = (x: tf.Tensor2D, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => tf.Tensor2D;

export class MLP {
  readonly name: string;
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly activation: Activation;
  private readonly fused: FusedMLP;

  constructor(scope: ParameterScope, hidden: number, intermediate: number, activation: Activation, init: MLPInit) {
    this.name = scope.name;
    this.activation = activation;
    this.fc1 = new Linear(scope.child('fc1'), hidden, intermediate, { weightInit: { kind: 'normal', std: init.fc1Std } });
    this.fc2 = new Linear(scope.child('fc2'), intermediate, hidden, { weightInit: { kind: 'normal', std: init.fc2Std } });
    this.fused = fusedMLP(activation);
  }

  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, x, () => (this.capturesInside(ctx) ? this.layerByLayer(x, ctx) : this.asOneOp(x)));
  }

  /** Whether a capture pattern selects fc1, the activation or fc2, which only the layer-by-layer path records. */
  private capturesInside(ctx: ForwardContext): boolean {
    if (!ctx.capturing) return false;
    return [this.fc1.name, this.activationName, this.fc2.name].some((name) => ctx.wants(name, 'input') || ctx.wants(name, 'output'));
  }

  // The reference registers the activation as the submodule `activation_fn`.
  private get activationName(): string {
    return `${this.name}.activation_fn`;
  }

  private layerByLayer(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    const h = this.fc1.forward(x, ctx);
    const a = ctx.module(this.activationName, h, () => this.activation.apply(h));
    return this.fc2.forward(a, ctx);
  }

  private asOneOp(x: tf.Tensor): tf.Tensor {
    const leading = x.shape.slice(0, -1);
    // [..., hidden] -> [N, hidden]
    const flat = x.reshape([-1, this.fc1.inFeatures]) as tf.Tensor2D;
    const y = this.fused(flat, this.fc1.weight.variable, this.fc1.bias!.variable, this.fc2.weight.variable, this.fc2.bias!.variable);
    // [N, hidden] -> [..., hidden]
    return y.reshape([...leading, this.fc2.outFeatures]);
  }
}

function fusedMLP(activation: Activation): FusedMLP {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w1, b1, w2, b2, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // linearProduct's forward (the fused product); its own gradient is not taped inside this op.
    const h = linearProduct(x, w1, b1);
    save([x, h, w1, w2]);
    return {
      value: linearProduct(activation.apply(h) as tf.Tensor2D, w2, b2),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, hs, w1s, w2s] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.tidy(() => {
          // fc2 and the activation first, in a scope of their own, so that their [N, intermediate] temporaries are
          // freed before fc1's products allocate.
          const [dh, dw2] = tf.tidy(() => {
            const [da, dw2] = productGradients(dy, activation.apply(hs), w2s);
            return [tf.mul(da, activation.derivative(hs)), dw2];
          });
          const [dx, dw1] = productGradients(dh, xs, w1s);
          return [dx, dw1, tf.sum(dh, 0), dw2, tf.sum(dy, 0)];
        });
      },
    };
  }) as unknown as FusedMLP;
}
