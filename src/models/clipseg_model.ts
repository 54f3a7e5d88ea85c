/**
 * `CLIPSegModel`: the two CLIP towers, their projections and the logit scale (keys `text_model.*`,
 * `vision_model.*`, `visual_projection`, `text_projection`, `logit_scale`; under `clip.` inside CLIPSeg).
 * Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegConfig } from '../config/index.js';
import { ShapeError } from '../errors.js';
import { ForwardContext } from '../layers/context.js';
import { Linear } from '../layers/linear.js';
import type { Parameter, ParameterScope } from '../layers/scope.js';
import { type ModelOptions, PreTrainedModel } from './base.js';
import { type CaptureOptions, CLIPSegTextTransformer } from './clip_text.js';
import { CLIPSegVisionTransformer, visionOutput } from './clip_vision.js';
import { checkPixels, readTokens, type TokenBatch, type TokenIds } from './inputs.js';
import { contrastiveLoss } from './losses.js';
import type { CLIPSegOutput } from './outputs.js';
import { loadPretrained, type PretrainedOptions } from './pretrained.js';
import { runForward } from './tidy.js';

export interface CLIPSegModelInputs {
  inputIds: TokenIds;
  attentionMask?: TokenIds;
  pixelValues: tf.Tensor4D;
  /** Also compute the symmetric contrastive loss (needs as many texts as images). */
  returnLoss?: boolean;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
}

export class CLIPSegModel extends PreTrainedModel {
  readonly config: CLIPSegConfig;
  readonly logitScale: Parameter;
  readonly textModel: CLIPSegTextTransformer;
  readonly visionModel: CLIPSegVisionTransformer;
  readonly visualProjection: Linear;
  readonly textProjection: Linear;

  /** `scope` places the model inside a larger one (CLIPSegForImageSegmentation passes `clip`). */
  constructor(config: CLIPSegConfig, options: ModelOptions = {}, scope?: ParameterScope) {
    super(scope);
    this.config = config;
    const factor = config.initializer_factor;
    const text = config.text_config;
    const vision = config.vision_config;
    // PyTorch lists a module's own parameters before its children's, so logit_scale comes first.
    this.logitScale = this.scope.param('logit_scale', [], { kind: 'constant', value: config.logit_scale_init_value });
    this.textModel = new CLIPSegTextTransformer(this.scope.child('text_model'), text, factor);
    this.visionModel = new CLIPSegVisionTransformer(this.scope.child('vision_model'), vision, factor);
    this.visualProjection = new Linear(this.scope.child('visual_projection'), vision.hidden_size, config.projection_dim, {
      bias: false,
      weightInit: { kind: 'normal', std: vision.hidden_size ** -0.5 * factor },
    });
    this.textProjection = new Linear(this.scope.child('text_projection'), text.hidden_size, config.projection_dim, {
      bias: false,
      weightInit: { kind: 'normal', std: text.hidden_size ** -0.5 * factor },
    });
    this.finishConstruction(options);
  }

  /** text_projection(pooled EOS state): [B, projection_dim], not normalised. */
  textFeatures(tokens: TokenBatch, ctx: ForwardContext): tf.Tensor2D {
    const out = this.textModel.forward(tokens, {}, ctx);
    return this.textProjection.forward(out.poolerOutput, ctx) as tf.Tensor2D;
  }

  /** visual_projection(post_layernorm(CLS)): [B, projection_dim], not normalised. */
  imageFeatures(pixels: tf.Tensor, ctx: ForwardContext): tf.Tensor2D {
    const run = this.visionModel.forward(pixels, {}, ctx);
    return this.visualProjection.forward(run.poolerOutput!, ctx) as tf.Tensor2D;
  }

  getTextFeatures(inputs: { inputIds: TokenIds; attentionMask?: TokenIds }): tf.Tensor2D {
    const tokens = readTokens(inputs.inputIds, inputs.attentionMask, this.config.text_config);
    return tf.tidy(() => this.textFeatures(tokens, new ForwardContext()));
  }

  getImageFeatures(pixelValues: tf.Tensor4D): tf.Tensor2D {
    const pixels = checkPixels(pixelValues, 'pixelValues', this.config.vision_config, false);
    return tf.tidy(() => this.imageFeatures(pixels, new ForwardContext()));
  }

  forward(inputs: CLIPSegModelInputs, options: CaptureOptions = {}): CLIPSegOutput {
    const tokens = readTokens(inputs.inputIds, inputs.attentionMask, this.config.text_config);
    const pixels = checkPixels(inputs.pixelValues, 'pixelValues', this.config.vision_config, false);
    if (inputs.returnLoss && tokens.batch !== pixels.shape[0]) {
      throw new ShapeError('inputIds', `batch ${pixels.shape[0]} (as many texts as images, for the contrastive loss)`, `batch ${tokens.batch}`);
    }
    const hidden = inputs.outputHiddenStates ?? false;
    return runForward({ capture: options.capture, outputAttentions: inputs.outputAttentions }, (ctx): CLIPSegOutput => {
      const visionModelOutput = visionOutput(this.visionModel.forward(pixels, {}, ctx), hidden);
      const textModelOutput = this.textModel.forward(tokens, { outputHiddenStates: hidden }, ctx);
      const imageEmbeds = l2Normalize(this.visualProjection.forward(visionModelOutput.poolerOutput, ctx)) as tf.Tensor2D;
      const textEmbeds = l2Normalize(this.textProjection.forward(textModelOutput.poolerOutput, ctx)) as tf.Tensor2D;
      // [texts, P] x [P, images], scaled by exp(logit_scale)
      const logitsPerText = tf.mul(tf.matMul(textEmbeds, tf.transpose(imageEmbeds)), tf.exp(this.logitScale.variable)) as tf.Tensor2D;
      const logitsPerImage = tf.transpose(logitsPerText);
      const loss = inputs.returnLoss ? contrastiveLoss(logitsPerText) : undefined;
      return { loss, logitsPerImage, logitsPerText, textEmbeds, imageEmbeds, textModelOutput, visionModelOutput };
    });
  }

  /** Reads the CLIP part of a CLIPSeg checkpoint (its `clip.*` keys) or a CLIPSegModel checkpoint. */
  static fromPretrained(source: string, options: PretrainedOptions & ModelOptions = {}): Promise<CLIPSegModel> {
    return loadPretrained(source, options, (config) => new CLIPSegModel(config, { ...options, initialize: false }), true);
  }
}

/** x / |x| along the last axis. */
export function l2Normalize(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.sum(tf.square(x), -1, true)));
}
