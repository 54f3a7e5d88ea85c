/**
 * `CLIPSegDecoderLayer` (post-norm) and `CLIPSegDecoder`: reduce each extracted vision activation to
 * `reduce_dim`, deepest first, FiLM-condition on the prompt embedding before step `conditional_layer`, run a
 * small transformer, then turn the patch tokens back into a mask with (transposed) convolutions.
 * Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegConfig } from '../config/index.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { relu } from '../layers/activations.js';
import { Attention } from '../layers/attention.js';
import type { ForwardContext } from '../layers/context.js';
import { Conv2d } from '../layers/conv.js';
import { ConvTranspose2d } from '../layers/conv_transpose.js';
import { LayerNorm } from '../layers/layer_norm.js';
import { Linear } from '../layers/linear.js';
import { MLP } from '../layers/mlp.js';
import type { ParameterScope } from '../layers/scope.js';
import { type LayerOutput, layerInit, type TowerConfig } from './encoder.js';
import type { CLIPSegDecoderOutput } from './outputs.js';
import { runForward } from './tidy.js';

export class CLIPSegDecoderLayer {
  readonly name: string;
  readonly selfAttn: Attention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: MLP;
  readonly layerNorm2: LayerNorm;

  constructor(scope: ParameterScope, config: TowerConfig, initLayers: number) {
    this.name = scope.name;
    const init = layerInit(config.hidden_size, initLayers, 1);
    this.selfAttn = new Attention(scope.child('self_attn'), config.hidden_size, config.num_attention_heads, init.attention);
    this.layerNorm1 = new LayerNorm(scope.child('layer_norm1'), config.hidden_size, config.layer_norm_eps);
    this.mlp = new MLP(scope.child('mlp'), config.hidden_size, config.intermediate_size, relu, init.mlp);
    this.layerNorm2 = new LayerNorm(scope.child('layer_norm2'), config.hidden_size, config.layer_norm_eps);
  }

  /** h = LN1(h + Attn(h)); h = LN2(h + MLP(h)). */
  forward(x: tf.Tensor, ctx: ForwardContext): LayerOutput {
    ctx.record(this.name, 'input', x);
    const attention = this.selfAttn.forward(x, undefined, ctx);
    const h = this.layerNorm1.forward(tf.add(x, attention.output), ctx);
    const hidden = this.layerNorm2.forward(tf.add(h, this.mlp.forward(h, ctx)), ctx);
    ctx.record(this.name, 'output', hidden);
    return { hidden, weights: attention.weights };
  }
}

/** The head after the decoder layers: a single transposed conv, or conv3x3-ReLU-convT-ReLU-convT when refined. */
class TransposedConvolution {
  readonly name: string;
  readonly modules: (Conv2d | ConvTranspose2d | undefined)[];

  constructor(scope: ParameterScope, config: CLIPSegConfig) {
    this.name = scope.name;
    const r = config.reduce_dim;
    const p = config.vision_config.patch_size;
    if (config.use_complex_transposed_convolution) {
      const k = p / 4;
      // nn.Sequential indices: 0 conv, 1 ReLU, 2 convT, 3 ReLU, 4 convT.
      this.modules = [
        new Conv2d(scope.child(0), r, r, 3, { padding: 1 }),
        undefined,
        new ConvTranspose2d(scope.child(2), r, r / 2, k),
        undefined,
        new ConvTranspose2d(scope.child(4), r / 2, 1, k),
      ];
    } else {
      this.modules = [new ConvTranspose2d(scope, r, 1, p)];
    }
  }

  /** x: [N, g, g, R] -> [N, S, S, 1]. */
  forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    if (this.modules.length === 1) return this.modules[0]!.forward(x, ctx);
    return ctx.module(
      this.name,
      x,
      () =>
        this.modules.reduce((h, module, i) => {
          if (module !== undefined) return module.forward(h, ctx);
          return ctx.module(`${this.name}.${i}`, h, () => tf.relu(h), true);
        }, x),
      true,
    );
  }
}

export interface DecoderForwardOptions {
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
  /** Glob patterns of module names whose activations to keep (see `ForwardContext`). */
  capture?: readonly string[];
}

export class CLIPSegDecoder {
  readonly name: string;
  readonly config: CLIPSegConfig;
  readonly filmMul: Linear;
  readonly filmAdd: Linear;
  readonly transposedConvolution: TransposedConvolution;
  readonly reduces: Linear[];
  readonly layers: CLIPSegDecoderLayer[];

  constructor(scope: ParameterScope, config: CLIPSegConfig) {
    this.name = scope.name;
    this.config = config;
    const r = config.reduce_dim;
    const depth = config.extract_layers.length;
    const vision = config.vision_config;
    this.filmMul = new Linear(scope.child('film_mul'), config.projection_dim, r);
    this.filmAdd = new Linear(scope.child('film_add'), config.projection_dim, r);
    this.transposedConvolution = new TransposedConvolution(scope.child('transposed_convolution'), config);
    const reduces = scope.child('reduces');
    this.reduces = Array.from({ length: depth }, (_, i) => new Linear(reduces.child(i), vision.hidden_size, r));
    // The reference deep-copies the vision config and overrides width, heads, MLP size and activation (ReLU).
    const layerConfig: TowerConfig = {
      hidden_size: r,
      intermediate_size: config.decoder_intermediate_size,
      num_hidden_layers: vision.num_hidden_layers,
      num_attention_heads: config.decoder_num_attention_heads,
      hidden_act: 'relu',
      layer_norm_eps: vision.layer_norm_eps,
    };
    const layers = scope.child('layers');
    this.layers = Array.from({ length: depth }, (_, i) => new CLIPSegDecoderLayer(layers.child(i), layerConfig, vision.num_hidden_layers));
  }

  /**
   * Differentiable w.r.t. the decoder's variables (use inside `tf.variableGrads` / `optimizer.minimize`).
   *
   * @param activations The vision hidden states after each of `extract_layers`, in config order, each [B, T, D];
   *   B is 1 (shared by all prompts) or the prompt count.
   * @param conditionalEmbeddings [N, projection_dim].
   */
  forward(activations: readonly tf.Tensor[], conditionalEmbeddings: tf.Tensor, options: DecoderForwardOptions = {}): CLIPSegDecoderOutput & { captures?: Record<string, tf.Tensor> } {
    this.checkInputs(activations, conditionalEmbeddings);
    return runForward({ capture: options.capture, outputAttentions: options.outputAttentions }, (ctx) =>
      this.run(activations, conditionalEmbeddings, options.outputHiddenStates ?? false, ctx),
    );
  }

  checkInputs(activations: readonly tf.Tensor[], conditionalEmbeddings: tf.Tensor): void {
    const depth = this.reduces.length;
    const d = this.config.vision_config.hidden_size;
    if (!Array.isArray(activations) || activations.length !== depth) {
      throw new InvalidArgumentError(`activations: expected ${depth} tensors (one per extract layer), got ${Array.isArray(activations) ? activations.length : typeof activations}`);
    }
    if (!(conditionalEmbeddings instanceof tf.Tensor) || conditionalEmbeddings.rank !== 2 || conditionalEmbeddings.shape[1] !== this.config.projection_dim) {
      const shape = conditionalEmbeddings instanceof tf.Tensor ? conditionalEmbeddings.shape : String(conditionalEmbeddings);
      throw new ShapeError('conditionalEmbeddings', `[batch, ${this.config.projection_dim}]`, shape);
    }
    const n = conditionalEmbeddings.shape[0]!;
    const first = activations[0];
    activations.forEach((a, i) => {
      const ok =
        a instanceof tf.Tensor && a.rank === 3 && a.shape[2] === d && (a.shape[0] === 1 || a.shape[0] === n) &&
        tf.util.arraysEqual(a.shape, first!.shape) && isSquarePlusOne(a.shape[1]!);
      if (!ok) {
        throw new ShapeError(`activations[${i}]`, `[1 or ${n}, 1 + g*g, ${d}], all alike`, a instanceof tf.Tensor ? a.shape : String(a));
      }
    });
  }

  /** The decoder body inside the caller's tidy and context. */
  run(activations: readonly tf.Tensor[], conditional: tf.Tensor, outputHiddenStates: boolean, ctx: ForwardContext): CLIPSegDecoderOutput {
    // The reference decoder's first argument is the tuple of activations, so it has no single input to capture.
    const hiddenStates: tf.Tensor3D[] = [];
    const attentions: tf.Tensor4D[] = [];
    let output: tf.Tensor | undefined;
    // Deepest activation first, as the reference reverses the list.
    const reversed = [...activations].reverse();
    reversed.forEach((activation, i) => {
      const reduced = this.reduces[i]!.forward(activation, ctx);
      output = output === undefined ? reduced : tf.add(reduced, output);
      if (i === this.config.conditional_layer) {
        const n = conditional.shape[0]!;
        const r = this.config.reduce_dim;
        // [N, R] -> [N, 1, R]: the same scale and shift for every token, CLS included.
        const scale = this.filmMul.forward(conditional, ctx).reshape([n, 1, r]);
        const shift = this.filmAdd.forward(conditional, ctx).reshape([n, 1, r]);
        output = tf.add(tf.mul(scale, output), shift);
      }
      const input = output;
      const layer = this.layers[i]!;
      const out = tf.tidy(() => layer.forward(input, ctx) as unknown as tf.TensorContainer) as unknown as LayerOutput;
      output = out.hidden;
      if (outputHiddenStates) hiddenStates.push(output as tf.Tensor3D);
      if (ctx.outputAttentions && out.weights !== undefined) attentions.push(out.weights as tf.Tensor4D);
    });
    const logits = this.head(output!, ctx);
    ctx.record(this.name, 'output', logits);
    return {
      logits,
      hiddenStates: outputHiddenStates ? hiddenStates : undefined,
      attentions: ctx.outputAttentions ? attentions : undefined,
    };
  }

  /** [N, 1 + g*g, R] -> drop CLS -> [N, g, g, R] (tokens are row-major) -> head -> [N, S, S]. */
  private head(tokens: tf.Tensor, ctx: ForwardContext): tf.Tensor3D {
    const [n, t, r] = tokens.shape as [number, number, number];
    const g = Math.round(Math.sqrt(t - 1));
    // [N, 1 + g*g, R] -> [N, g*g, R] -> [N, g, g, R]
    const grid = tf.slice(tokens, [0, 1, 0], [n, t - 1, r]).reshape([n, g, g, r]);
    const mask = this.transposedConvolution.forward(grid, ctx);
    const [, s] = mask.shape as [number, number, number, number];
    // [N, S, S, 1] -> [N, S, S]
    return mask.reshape([n, s, s]) as tf.Tensor3D;
  }
}

function isSquarePlusOne(tokens: number): boolean {
  const g = Math.round(Math.sqrt(tokens - 1));
  return tokens > 1 && g * g === tokens - 1;
}
