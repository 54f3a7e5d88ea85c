/**
 * `CLIPSegEncoderLayer` (pre-norm) and `CLIPSegEncoder`, shared by the text and vision towers.
 * Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 */
import * as tf from '@tensorflow/tfjs';
import { activationByName } from '../layers/activations.js';
import { Attention } from '../layers/attention.js';
import type { ForwardContext } from '../layers/context.js';
import { LayerNorm } from '../layers/layer_norm.js';
import { MLP } from '../layers/mlp.js';
import type { ParameterScope } from '../layers/scope.js';

/** The fields of a text or vision config a transformer stack needs. */
export interface TowerConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  hidden_act: string;
  layer_norm_eps: number;
}

/** transformers' `_init_weights` stds for a layer of width `d` in a stack of `layers` layers. */
export function layerInit(d: number, layers: number, factor: number) {
  const inProjStd = d ** -0.5 * (2 * layers) ** -0.5 * factor;
  return {
    attention: { inProjStd, outProjStd: d ** -0.5 * factor },
    mlp: { fc1Std: (2 * d) ** -0.5 * factor, fc2Std: inProjStd },
  };
}

export interface LayerOutput {
  hidden: tf.Tensor;
  weights?: tf.Tensor;
}

export class CLIPSegEncoderLayer {
  readonly name: string;
  readonly selfAttn: Attention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: MLP;
  readonly layerNorm2: LayerNorm;

  constructor(scope: ParameterScope, config: TowerConfig, factor: number) {
    this.name = scope.name;
    const init = layerInit(config.hidden_size, config.num_hidden_layers, factor);
    this.selfAttn = new Attention(scope.child('self_attn'), config.hidden_size, config.num_attention_heads, init.attention);
    this.layerNorm1 = new LayerNorm(scope.child('layer_norm1'), config.hidden_size, config.layer_norm_eps);
    this.mlp = new MLP(scope.child('mlp'), config.hidden_size, config.intermediate_size, activationByName(config.hidden_act), init.mlp);
    this.layerNorm2 = new LayerNorm(scope.child('layer_norm2'), config.hidden_size, config.layer_norm_eps);
  }

  /** h = h + Attn(LN1(h)); h = h + MLP(LN2(h)). */
  forward(x: tf.Tensor, mask: tf.Tensor | undefined, ctx: ForwardContext): LayerOutput {
    ctx.record(this.name, 'input', x);
    const attention = this.selfAttn.forward(this.layerNorm1.forward(x, ctx), mask, ctx);
    const h = tf.add(x, attention.output);
    const hidden = tf.add(h, this.mlp.forward(this.layerNorm2.forward(h, ctx), ctx));
    ctx.record(this.name, 'output', hidden);
    return { hidden, weights: attention.weights };
  }
}

export interface EncoderOutput {
  lastHiddenState: tf.Tensor;
  /** The input followed by each layer's output (length layers run + 1). */
  hiddenStates: tf.Tensor[];
  /** Per layer, when the context asks for attentions. */
  attentions?: tf.Tensor[];
}

export class CLIPSegEncoder {
  readonly name: string;
  readonly layers: CLIPSegEncoderLayer[];

  constructor(scope: ParameterScope, config: TowerConfig, factor: number) {
    this.name = scope.name;
    const layers = scope.child('layers');
    this.layers = Array.from({ length: config.num_hidden_layers }, (_, i) => new CLIPSegEncoderLayer(layers.child(i), config, factor));
  }

  /** Runs the first `numLayers` layers (all by default); each layer's temporaries are freed as it finishes. */
  forward(x: tf.Tensor, mask: tf.Tensor | undefined, ctx: ForwardContext, numLayers = this.layers.length): EncoderOutput {
    ctx.record(this.name, 'input', x);
    const hiddenStates = [x];
    const attentions: tf.Tensor[] = [];
    let h = x;
    for (const layer of this.layers.slice(0, numLayers)) {
      const input = h;
      const out = tf.tidy(() => layer.forward(input, mask, ctx) as unknown as tf.TensorContainer) as unknown as LayerOutput;
      h = out.hidden;
      hiddenStates.push(h);
      if (out.weights !== undefined) attentions.push(out.weights);
    }
    if (numLayers === this.layers.length) ctx.record(this.name, 'output', h);
    return { lastHiddenState: h, hiddenStates, attentions: ctx.outputAttentions ? attentions : undefined };
  }
}
