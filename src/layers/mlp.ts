/** `CLIPSegMLP`: fc1, activation, fc2. */
import type * as tf from '@tensorflow/tfjs';
import type { Activation } from './activations.js';
import type { ForwardContext } from './context.js';
import { Linear } from './linear.js';
import type { ParameterScope } from './scope.js';

export interface MLPInit {
  fc1Std: number;
  fc2Std: number;
}

export class MLP {
  readonly name: string;
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly activation: Activation;

  constructor(scope: ParameterScope, hidden: number, intermediate: number, activation: Activation, init: MLPInit) {
    this.name = scope.name;
    this.activation = activation;
    this.fc1 = new Linear(scope.child('fc1'), hidden, intermediate, { weightInit: { kind: 'normal', std: init.fc1Std } });
    this.fc2 = new Linear(scope.child('fc2'), intermediate, hidden, { weightInit: { kind: 'normal', std: init.fc2Std } });
  }

  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, x, () => {
      const h = this.fc1.forward(x, ctx);
      // The reference registers the activation as the submodule `activation_fn`.
      const a = ctx.module(`${this.name}.activation_fn`, h, () => this.activation(h));
      return this.fc2.forward(a, ctx);
    });
  }
}
