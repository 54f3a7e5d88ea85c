/**
 * `CLIPSegForImageSegmentation`: CLIP (`clip.*`, frozen by default) plus the decoder (`decoder.*`).
 * Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 *
 * Differences from the reference, none of which changes a value:
 * - one image may be shared by N prompts: its vision pass runs once and the decoder broadcasts it;
 * - when neither pooled outputs nor hidden states are wanted (`computePooled: false`), vision layers after the
 *   deepest extract layer are skipped.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegConfig } from '../config/index.js';
import { InvalidArgumentError } from '../errors.js';
import { ForwardContext } from '../layers/context.js';
import { type ModelOptions, PreTrainedModel } from './base.js';
import type { CaptureOptions } from './clip_text.js';
import { CLIPSegModel } from './clipseg_model.js';
import { CLIPSegDecoder } from './clipseg_decoder.js';
import { checkMatrix, checkPixels, checkShape, pairedBatch, readTokens, type TokenBatch, type TokenIds } from './inputs.js';
import { bceWithLogits } from './losses.js';
import type { CLIPSegImageSegmentationOutput } from './outputs.js';
import { loadPretrained, type PretrainedOptions } from './pretrained.js';
import { runForward } from './tidy.js';

export interface SegmentationInputs {
  /** [B, 3, H, W] NCHW, H = W a multiple of the patch size. B is 1 (shared by all prompts) or the prompt count. */
  pixelValues: tf.Tensor4D;
  /** Text prompts [N, T]. */
  inputIds?: TokenIds;
  attentionMask?: TokenIds;
  /** Image prompts [N, 3, H', W'] (any size that is a multiple of the patch size). */
  conditionalPixelValues?: tf.Tensor4D;
  /** Ready conditioning [N, projection_dim]; takes precedence over the other prompt kinds, as in the reference. */
  conditionalEmbeddings?: tf.Tensor2D;
  /** Float targets in [0, 1] with the logits' shape [N, S, S]; adds `loss`. */
  labels?: tf.Tensor3D;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
}

export interface SegmentationOptions extends CaptureOptions {
  /**
   * Compute the vision tower's last layers, `pooledOutput` and `visionModelOutput.{lastHiddenState,
   * poolerOutput}` (default true, as the reference). With false and no hidden states requested, the layers after
   * the deepest extract layer are skipped.
   */
  computePooled?: boolean;
}

/** Where the conditioning comes from (one of the three). */
export type ConditionalSource =
  | { inputIds: TokenIds; attentionMask?: TokenIds }
  | { conditionalPixelValues: tf.Tensor4D }
  | { conditionalEmbeddings: tf.Tensor2D };

type Prompt =
  | { kind: 'embeddings'; embeddings: tf.Tensor2D; batch: number }
  | { kind: 'text'; tokens: TokenBatch; batch: number }
  | { kind: 'image'; pixels: tf.Tensor4D; batch: number };

export class CLIPSegForImageSegmentation extends PreTrainedModel {
  readonly config: CLIPSegConfig;
  readonly clip: CLIPSegModel;
  readonly decoder: CLIPSegDecoder;

  constructor(config: CLIPSegConfig, options: ModelOptions = {}) {
    super(undefined);
    this.config = config;
    this.clip = new CLIPSegModel(config, options, this.scope.child('clip'));
    this.decoder = new CLIPSegDecoder(this.scope.child('decoder'), config);
    this.finishConstruction(options);
    this.setTrainable('decoder');
  }

  /** The number of vision layers the decoder needs (the deepest extract layer + 1). */
  get decoderDepth(): number {
    return Math.max(...this.config.extract_layers) + 1;
  }

  forward(inputs: SegmentationInputs, options: SegmentationOptions = {}): CLIPSegImageSegmentationOutput {
    if (inputs === null || typeof inputs !== 'object') throw new InvalidArgumentError(`inputs: expected an object, got ${inputs === null ? 'null' : typeof inputs}`);
    const pixels = checkPixels(inputs.pixelValues, 'pixelValues', this.config.vision_config, true);
    const prompt = this.readPrompt(inputs);
    const batch = pairedBatch(pixels.shape[0], prompt.batch, promptName(prompt));
    const size = this.logitsSize(pixels.shape[2]);
    const labels = inputs.labels === undefined ? undefined : checkShape(inputs.labels, 'labels', [batch, size, size], 'the logits shape');
    const hidden = inputs.outputHiddenStates ?? false;
    const full = (options.computePooled ?? true) || hidden;
    return runForward({ capture: options.capture, outputAttentions: inputs.outputAttentions }, (ctx): CLIPSegImageSegmentationOutput => {
      const run = this.clip.visionModel.forward(pixels, { numLayers: full ? undefined : this.decoderDepth }, ctx);
      const activations = this.config.extract_layers.map((i) => run.hiddenStates[i + 1]!);
      const pooledOutput = full ? (this.clip.visualProjection.forward(run.poolerOutput!, ctx) as tf.Tensor2D) : undefined;
      const conditionalEmbeddings = this.promptEmbeddings(prompt, ctx);
      const decoderOutput = this.decoder.run(activations, conditionalEmbeddings, hidden, ctx);
      return {
        loss: labels === undefined ? undefined : bceWithLogits(decoderOutput.logits, labels),
        logits: decoderOutput.logits.clone(),
        conditionalEmbeddings: prompt.kind === 'embeddings' ? conditionalEmbeddings.clone() : conditionalEmbeddings,
        pooledOutput,
        visionModelOutput: {
          lastHiddenState: run.lastHiddenState,
          poolerOutput: run.poolerOutput,
          hiddenStates: hidden ? run.hiddenStates : undefined,
          attentions: run.attentions,
        },
        decoderOutput,
      };
    });
  }

  /**
   * The vision hidden states the decoder consumes (after each of `layers`, default `extract_layers`), running the
   * tower only as deep as needed. Call it outside a gradient tape to train the decoder alone: the decoder's
   * `forward(activations, conditionalEmbeddings)` then differentiates w.r.t. decoder variables only.
   */
  visionActivations(pixelValues: tf.Tensor4D, options: { layers?: readonly number[] } = {}): tf.Tensor3D[] {
    const pixels = checkPixels(pixelValues, 'pixelValues', this.config.vision_config, true);
    const layers = options.layers ?? this.config.extract_layers;
    const count = this.config.vision_config.num_hidden_layers;
    if (!Array.isArray(layers) || layers.length === 0 || !layers.every((i) => Number.isInteger(i) && i >= 0 && i < count)) {
      throw new InvalidArgumentError(`layers: expected a non-empty list of layer indices in 0..${count - 1}, got ${JSON.stringify(layers)}`);
    }
    return tf.tidy(() => {
      const run = this.clip.visionModel.forward(pixels, { numLayers: Math.max(...layers) + 1 }, new ForwardContext());
      return layers.map((i) => run.hiddenStates[i + 1]!);
    });
  }

  /** The conditioning [N, projection_dim] from text ids, an image prompt, or given embeddings (returned as a copy). */
  conditionalEmbeddings(source: ConditionalSource): tf.Tensor2D {
    if (source === null || typeof source !== 'object') throw new InvalidArgumentError(`source: expected an object, got ${source === null ? 'null' : typeof source}`);
    const prompt = this.readPrompt(source as SegmentationInputs);
    return tf.tidy(() => {
      const embeddings = this.promptEmbeddings(prompt, new ForwardContext());
      return prompt.kind === 'embeddings' ? embeddings.clone() : embeddings;
    });
  }

  /** The logits' side for square inputs of side `size`: the refined head upsamples by (patch/4)^2. */
  logitsSize(size: number): number {
    const p = this.config.vision_config.patch_size;
    const grid = size / p;
    return this.config.use_complex_transposed_convolution ? grid * (p / 4) ** 2 : grid * p;
  }

  private readPrompt(inputs: Partial<SegmentationInputs>): Prompt {
    const vision = this.config.vision_config;
    if (inputs.conditionalEmbeddings !== undefined) {
      const embeddings = checkMatrix(inputs.conditionalEmbeddings, 'conditionalEmbeddings', this.config.projection_dim, 'projection_dim');
      return { kind: 'embeddings', embeddings, batch: embeddings.shape[0] };
    }
    if (inputs.inputIds !== undefined) {
      const tokens = readTokens(inputs.inputIds, inputs.attentionMask, this.config.text_config);
      return { kind: 'text', tokens, batch: tokens.batch };
    }
    if (inputs.conditionalPixelValues !== undefined) {
      const pixels = checkPixels(inputs.conditionalPixelValues, 'conditionalPixelValues', vision, false);
      return { kind: 'image', pixels, batch: pixels.shape[0] };
    }
    throw new InvalidArgumentError('no prompt: pass one of inputIds (text), conditionalPixelValues (image) or conditionalEmbeddings');
  }

  private promptEmbeddings(prompt: Prompt, ctx: ForwardContext): tf.Tensor2D {
    switch (prompt.kind) {
      case 'embeddings':
        return prompt.embeddings;
      case 'text':
        return this.clip.textFeatures(prompt.tokens, ctx);
      case 'image':
        return this.clip.imageFeatures(prompt.pixels, ctx);
    }
  }

  static fromPretrained(source: string, options: PretrainedOptions & ModelOptions = {}): Promise<CLIPSegForImageSegmentation> {
    return loadPretrained(source, options, (config) => new CLIPSegForImageSegmentation(config, { ...options, initialize: false }), false);
  }
}

function promptName(prompt: Prompt): string {
  return prompt.kind === 'text' ? 'inputIds' : prompt.kind === 'image' ? 'conditionalPixelValues' : 'conditionalEmbeddings';
}
