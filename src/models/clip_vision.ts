/**
 * The CLIP vision tower: `CLIPSegVisionEmbeddings`, `CLIPSegVisionTransformer` and the standalone
 * `CLIPSegVisionModel`. Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegVisionConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { resizeBicubic } from '../layers/bicubic.js';
import type { ForwardContext } from '../layers/context.js';
import { Conv2d } from '../layers/conv.js';
import { Embedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layer_norm.js';
import type { Parameter, ParameterScope } from '../layers/scope.js';
import { type ModelOptions, PreTrainedModel } from './base.js';
import type { CaptureOptions } from './clip_text.js';
import { CLIPSegEncoder } from './encoder.js';
import { checkPixels } from './inputs.js';
import type { BaseModelOutputWithPooling } from './outputs.js';
import { loadPretrained, type PretrainedOptions } from './pretrained.js';
import { runForward } from './tidy.js';

export class CLIPSegVisionEmbeddings {
  readonly name: string;
  readonly config: CLIPSegVisionConfig;
  readonly classEmbedding: Parameter;
  readonly patchEmbedding: Conv2d;
  readonly positionEmbedding: Embedding;
  /** Interpolated position tables by grid size, valid for the position variable data they were computed from. */
  private tables = new Map<string, Float32Array>();
  private tablesSource: object | undefined;

  constructor(scope: ParameterScope, config: CLIPSegVisionConfig, factor: number) {
    this.name = scope.name;
    this.config = config;
    const d = config.hidden_size;
    const p = config.patch_size;
    this.classEmbedding = scope.param('class_embedding', [d], { kind: 'normal', std: d ** -0.5 * factor });
    this.patchEmbedding = new Conv2d(scope.child('patch_embedding'), config.num_channels, d, p, {
      stride: p,
      bias: false,
      weightInit: { kind: 'normal', std: config.initializer_range * factor },
    });
    const positions = config.gridSize ** 2 + 1;
    this.positionEmbedding = new Embedding(scope.child('position_embedding'), positions, d, {
      kind: 'normal',
      std: config.initializer_range * factor,
    });
  }

  /** pixels: [B, C, H, W] -> [B, 1 + (H/p)(W/p), D]: CLS then patches row-major, plus positions. */
  forward(pixels: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, pixels, () => {
      const [b, , h, w] = pixels.shape as [number, number, number, number];
      const d = this.config.hidden_size;
      const gh = h / this.config.patch_size;
      const gw = w / this.config.patch_size;
      // [B, C, H, W] -> [B, H, W, C]
      const channelsLast = tf.transpose(pixels, [0, 2, 3, 1]);
      // [B, gh, gw, D] -> [B, gh*gw, D]
      const patches = this.patchEmbedding.forward(channelsLast, ctx).reshape([b, gh * gw, d]);
      const cls = tf.broadcastTo(this.classEmbedding.variable.reshape([1, 1, d]), [b, 1, d]);
      // [B, 1 + gh*gw, D] + [1 + gh*gw, D]
      return tf.add(tf.concat([cls, patches], 1), this.positionTable(gh, gw, ctx));
    });
  }

  /**
   * Position embeddings for a gh x gw grid: the table itself when it already has that (square) size, otherwise
   * its 2-D part resized bicubically (PyTorch semantics) with the CLS row in front. A frozen table's resizes are
   * cached on the host per grid size; a trainable one is resized inside the graph so gradients reach it.
   */
  positionTable(gh: number, gw: number, ctx: ForwardContext): tf.Tensor {
    const variable = this.positionEmbedding.weight.variable;
    const d = this.config.hidden_size;
    const n = variable.shape[0]! - 1;
    if (gh * gw === n && gh === gw) {
      ctx.record(this.positionEmbedding.name, 'output', variable);
      return variable;
    }
    const side = Math.round(Math.sqrt(n));
    if (side * side !== n) throw new ConfigError(`${this.positionEmbedding.name}: ${n} patch positions do not form a square grid`);
    const resize = () =>
      tf.tidy(() => {
        const cls = tf.slice(variable, [0, 0], [1, d]);
        // [n, D] -> [side, side, D] -> [gh, gw, D] -> [gh*gw, D]
        const grid = tf.slice(variable, [1, 0], [n, d]).reshape([side, side, d]);
        return tf.concat([cls, resizeBicubic(grid, gh, gw).reshape([gh * gw, d])], 0);
      });
    if (variable.trainable) return resize();
    if (this.tablesSource !== variable.dataId) {
      this.tables = new Map();
      this.tablesSource = variable.dataId;
    }
    const key = `${gh}x${gw}`;
    let data = this.tables.get(key);
    if (data === undefined) {
      const table = resize();
      data = table.dataSync() as Float32Array;
      table.dispose();
      this.tables.set(key, data);
    }
    return tf.tensor2d(data, [1 + gh * gw, d]);
  }
}

export interface VisionForwardOptions {
  /** Run only the first layers (default all); the last-layer outputs are then absent. */
  numLayers?: number;
}

/** A vision pass: every hidden state computed, plus the last-layer outputs when every layer ran. */
export interface VisionRun {
  hiddenStates: tf.Tensor3D[];
  lastHiddenState?: tf.Tensor3D;
  poolerOutput?: tf.Tensor2D;
  attentions?: tf.Tensor4D[];
}

export class CLIPSegVisionTransformer {
  readonly name: string;
  readonly config: CLIPSegVisionConfig;
  readonly embeddings: CLIPSegVisionEmbeddings;
  readonly preLayrnorm: LayerNorm;
  readonly encoder: CLIPSegEncoder;
  readonly postLayernorm: LayerNorm;

  constructor(scope: ParameterScope, config: CLIPSegVisionConfig, factor: number) {
    this.name = scope.name;
    this.config = config;
    this.embeddings = new CLIPSegVisionEmbeddings(scope.child('embeddings'), config, factor);
    // "pre_layrnorm" is the reference's spelling of the key.
    this.preLayrnorm = new LayerNorm(scope.child('pre_layrnorm'), config.hidden_size, config.layer_norm_eps);
    this.encoder = new CLIPSegEncoder(scope.child('encoder'), config, factor);
    this.postLayernorm = new LayerNorm(scope.child('post_layernorm'), config.hidden_size, config.layer_norm_eps);
  }

  /** pixels: validated [B, C, H, W]. */
  forward(pixels: tf.Tensor, options: VisionForwardOptions, ctx: ForwardContext): VisionRun {
    const layers = this.config.num_hidden_layers;
    const numLayers = Math.min(options.numLayers ?? layers, layers);
    ctx.record(this.name, 'input', pixels);
    const embedded = this.preLayrnorm.forward(this.embeddings.forward(pixels, ctx), ctx);
    const encoded = this.encoder.forward(embedded, undefined, ctx, numLayers);
    const run: VisionRun = {
      hiddenStates: encoded.hiddenStates as tf.Tensor3D[],
      attentions: encoded.attentions as tf.Tensor4D[] | undefined,
    };
    if (numLayers < layers) return run;
    const last = encoded.lastHiddenState;
    ctx.record(this.name, 'output', last);
    const [b, , d] = last.shape as [number, number, number];
    // CLS token: [B, 1, D] -> [B, D]
    const cls = tf.slice(last, [0, 0, 0], [b, 1, d]).reshape([b, d]);
    return { ...run, lastHiddenState: last as tf.Tensor3D, poolerOutput: this.postLayernorm.forward(cls, ctx) as tf.Tensor2D };
  }
}

export interface VisionModelInputs {
  pixelValues: tf.Tensor4D;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
}

/** The vision tower on its own (keys `vision_model.*`). Non-square inputs are allowed here. */
export class CLIPSegVisionModel extends PreTrainedModel {
  readonly config: CLIPSegVisionConfig;
  readonly visionModel: CLIPSegVisionTransformer;

  constructor(config: CLIPSegVisionConfig, options: ModelOptions = {}) {
    super(undefined);
    this.config = config;
    this.visionModel = new CLIPSegVisionTransformer(this.scope.child('vision_model'), config, config.initializer_factor);
    this.finishConstruction(options);
  }

  forward(inputs: VisionModelInputs, options: CaptureOptions = {}): BaseModelOutputWithPooling & { captures?: Record<string, tf.Tensor> } {
    const pixels = checkPixels(inputs.pixelValues, 'pixelValues', this.config, false);
    return runForward({ capture: options.capture, outputAttentions: inputs.outputAttentions }, (ctx) =>
      visionOutput(this.visionModel.forward(pixels, {}, ctx), inputs.outputHiddenStates ?? false),
    );
  }

  /** Reads the vision tower out of a CLIPSeg checkpoint (its `clip.vision_model.*` or `vision_model.*` keys). */
  static fromPretrained(source: string, options: PretrainedOptions & ModelOptions = {}): Promise<CLIPSegVisionModel> {
    return loadPretrained(source, options, (config) => new CLIPSegVisionModel(config.vision_config, { ...options, initialize: false }), true);
  }
}

/** A full vision pass as HF's `BaseModelOutputWithPooling`. */
export function visionOutput(run: VisionRun, outputHiddenStates: boolean): BaseModelOutputWithPooling {
  return {
    lastHiddenState: run.lastHiddenState!,
    poolerOutput: run.poolerOutput!,
    hiddenStates: outputHiddenStates ? run.hiddenStates : undefined,
    attentions: run.attentions,
  };
}
