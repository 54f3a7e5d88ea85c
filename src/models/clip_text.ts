/**
 * The CLIP text tower: `CLIPSegTextEmbeddings`, `CLIPSegTextTransformer` and the standalone `CLIPSegTextModel`.
 * Reference: transformers 4.57 `models/clipseg/modeling_clipseg.py`.
 */
import * as tf from '@tensorflow/tfjs';
import type { CLIPSegTextConfig } from '../config/index.js';
import type { ForwardContext } from '../layers/context.js';
import { Embedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layer_norm.js';
import type { ParameterScope } from '../layers/scope.js';
import { type ModelOptions, PreTrainedModel } from './base.js';
import { CLIPSegEncoder } from './encoder.js';
import { readTokens, type TokenBatch, type TokenIds } from './inputs.js';
import type { BaseModelOutputWithPooling } from './outputs.js';
import { loadPretrained, type PretrainedOptions } from './pretrained.js';
import { runForward } from './tidy.js';

/** float32's lowest value, which transformers adds at masked positions (two of them sum to -Infinity). */
const MASKED = -3.4028234663852886e38;

export class CLIPSegTextEmbeddings {
  readonly name: string;
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;

  constructor(scope: ParameterScope, config: CLIPSegTextConfig, factor: number) {
    this.name = scope.name;
    const init = { kind: 'normal', std: 0.02 * factor } as const;
    this.tokenEmbedding = new Embedding(scope.child('token_embedding'), config.vocab_size, config.hidden_size, init);
    this.positionEmbedding = new Embedding(scope.child('position_embedding'), config.max_position_embeddings, config.hidden_size, init);
  }

  /** ids: int32 [B, T] -> [B, T, D]. */
  forward(ids: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return ctx.module(this.name, ids, () => {
      const length = ids.shape[1]!;
      const positions = this.positionEmbedding.forward(tf.range(0, length, 1, 'int32'), ctx);
      // [B, T, D] + [T, D]
      return tf.add(this.tokenEmbedding.forward(ids, ctx), positions);
    });
  }
}

export interface TextForwardOptions {
  outputHiddenStates?: boolean;
}

export class CLIPSegTextTransformer {
  readonly name: string;
  readonly config: CLIPSegTextConfig;
  readonly embeddings: CLIPSegTextEmbeddings;
  readonly encoder: CLIPSegEncoder;
  readonly finalLayerNorm: LayerNorm;

  constructor(scope: ParameterScope, config: CLIPSegTextConfig, factor: number) {
    this.name = scope.name;
    this.config = config;
    this.embeddings = new CLIPSegTextEmbeddings(scope.child('embeddings'), config, factor);
    this.encoder = new CLIPSegEncoder(scope.child('encoder'), config, factor);
    this.finalLayerNorm = new LayerNorm(scope.child('final_layer_norm'), config.hidden_size, config.layer_norm_eps);
  }

  forward(tokens: TokenBatch, options: TextForwardOptions, ctx: ForwardContext): BaseModelOutputWithPooling {
    const { batch, length } = tokens;
    const ids = tf.tensor2d(tokens.ids, [batch, length], 'int32');
    ctx.record(this.name, 'input', ids);
    const embedded = this.embeddings.forward(ids, ctx);
    const mask = tf.tensor3d(attentionBias(tokens), [batch, length, length]);
    const encoded = this.encoder.forward(embedded, mask, ctx);
    const lastHiddenState = this.finalLayerNorm.forward(encoded.lastHiddenState, ctx);
    ctx.record(this.name, 'output', lastHiddenState);
    const positions = pooledPositions(tokens, this.config.eos_token_id);
    // B x [1, 1, D] -> [B, D]
    const rows = positions.map((t, b) => tf.slice(lastHiddenState, [b, t, 0], [1, 1, this.config.hidden_size]));
    const poolerOutput = tf.concat(rows, 0).reshape([batch, this.config.hidden_size]);
    return {
      lastHiddenState: lastHiddenState as tf.Tensor3D,
      poolerOutput: poolerOutput as tf.Tensor2D,
      hiddenStates: options.outputHiddenStates ? (encoded.hiddenStates as tf.Tensor3D[]) : undefined,
      attentions: encoded.attentions as tf.Tensor4D[] | undefined,
    };
  }
}

/**
 * The additive [B, T, T] mask: causal (key j > query i) plus padding (mask value other than 1 at key j), each
 * contributing float32's lowest value, as transformers builds it.
 */
export function attentionBias(tokens: TokenBatch): Float32Array {
  const { batch, length, mask } = tokens;
  const bias = new Float32Array(batch * length * length);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < length; i++) {
      for (let j = 0; j < length; j++) {
        const padded = mask !== undefined && mask[b * length + j] !== 1 ? MASKED : 0;
        bias[(b * length + i) * length + j] = (j > i ? MASKED : 0) + padded;
      }
    }
  }
  return bias;
}

/**
 * The token whose state is pooled, per row. Configs with the legacy `eos_token_id` 2 take the (first) largest id;
 * others the first `eos_token_id` (position 0 if the row has none), as transformers 4.57 does.
 */
export function pooledPositions(tokens: TokenBatch, eosTokenId: number): number[] {
  const { ids, batch, length } = tokens;
  const positions: number[] = [];
  for (let b = 0; b < batch; b++) {
    const row = ids.subarray(b * length, (b + 1) * length);
    let best = 0;
    if (eosTokenId === 2) {
      for (let t = 1; t < length; t++) if (row[t]! > row[best]!) best = t;
    } else {
      const first = row.indexOf(eosTokenId);
      best = first === -1 ? 0 : first;
    }
    positions.push(best);
  }
  return positions;
}

export interface TextModelInputs {
  inputIds: TokenIds;
  attentionMask?: TokenIds;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
}

export interface CaptureOptions {
  /** Glob patterns of module names whose activations to keep (see `ForwardContext`). */
  capture?: readonly string[];
}

/** The text tower on its own (keys `text_model.*`). */
export class CLIPSegTextModel extends PreTrainedModel {
  readonly config: CLIPSegTextConfig;
  readonly textModel: CLIPSegTextTransformer;

  constructor(config: CLIPSegTextConfig, options: ModelOptions = {}) {
    super(undefined);
    this.config = config;
    this.textModel = new CLIPSegTextTransformer(this.scope.child('text_model'), config, config.initializer_factor);
    this.finishConstruction(options);
  }

  forward(inputs: TextModelInputs, options: CaptureOptions = {}): BaseModelOutputWithPooling & { captures?: Record<string, tf.Tensor> } {
    const tokens = readTokens(inputs.inputIds, inputs.attentionMask, this.config);
    return runForward({ capture: options.capture, outputAttentions: inputs.outputAttentions }, (ctx) =>
      this.textModel.forward(tokens, { outputHiddenStates: inputs.outputHiddenStates }, ctx),
    );
  }

  /** Reads the text tower out of a CLIPSeg checkpoint (its `clip.text_model.*` or `text_model.*` keys). */
  static fromPretrained(source: string, options: PretrainedOptions & ModelOptions = {}): Promise<CLIPSegTextModel> {
    return loadPretrained(source, options, (config) => new CLIPSegTextModel(config.text_config, { ...options, initialize: false }), true);
  }
}
