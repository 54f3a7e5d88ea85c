/**
 * `nn.Embedding` lookup. The forward is a gather; its gradient is written as a scatter-add because tfjs' own
 * gather gradient needs UnsortedSegmentSum, which tfjs-wasm does not have.
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from './context.js';
import type { Init, Parameter, ParameterScope } from './scope.js';

export class Embedding {
  readonly name: string;
  readonly count: number;
  readonly dim: number;
  readonly weight: Parameter;

  constructor(scope: ParameterScope, count: number, dim: number, init: Init) {
    this.name = scope.name;
    this.count = count;
    this.dim = dim;
    this.weight = scope.param('weight', [count, dim], init);
  }

  /** ids: int32 [...] -> [..., dim]. */
  forward(ids: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, ids, () => {
      // [...] -> [N]
      const rows = gatherRows(this.weight.variable, ids.reshape([-1]));
      // [N, dim] -> [..., dim]
      return rows.reshape([...ids.shape, this.dim]);
    });
  }
}

/** table[ids] with a scatter-add gradient for the table. */
export function gatherRows(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([ids]);
    return {
      value: tf.gather(t, ids),
      // [N, dim] gradient rows summed into [count, dim] (scatterND adds duplicate indices).
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0]!.reshape([-1, 1]), dy, t.shape),
    };
  });
  return lookup(table);
}
