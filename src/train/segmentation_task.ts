/**
 * CLIPSeg training as a `TrainingTask`: micro-batch i is the sample pipeline's batch i (positions i*B .. i*B+B-1,
 * all randomness keyed by seed and position), the conditional is the text/visual interpolation
 * cond = w * text + (1 - w) * visual (w = 1 where a sample has no visual support), and the loss is BCE with logits
 * (the recipe's) or BCE plus a per-sample soft Dice term (`losses.ts`).
 *
 * Decoder-only training (the recipe): CLIP is frozen and everything it computes (vision activations, text and
 * visual embeddings) is computed before the gradient tape, so the tape holds only the decoder. Full fine-tuning
 * (`fullFinetune`) moves the CLIP passes inside the tape and trains every parameter. `freeze` holds chosen
 * parameters of either selection at their initial values (they are then neither updated nor checkpointed).
 * With full fine-tuning, `alignment` adds the token-alignment term (`alignment.ts`), whose two scalars are trained
 * and checkpointed with the model's parameters but are not part of the model.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, InvalidArgumentError, TrainingError } from '../errors.js';
import { globToRegExp } from '../glob.js';
import type { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';
import type { CLIPTokenizer } from '../processor/tokenizer.js';
import { checkAlignmentSelection, checkAlignmentWeight, TokenAlignment } from './alignment.js';
import type { FeatureCache } from './feature_cache.js';
import { checkSegmentationLoss, segmentationLoss, type SegmentationLoss } from './losses.js';
import type { SamplePipeline, TrainingBatch } from './sample_pipeline.js';
import type { MicroBatch, TrainingTask } from './trainer.js';

export interface SegmentationTaskOptions {
  model: CLIPSegForImageSegmentation;
  pipeline: SamplePipeline;
  tokenizer: CLIPTokenizer;
  /** Train CLIP too (default false: decoder only). */
  fullFinetune?: boolean;
  /** Frozen-activation cache; used only when CLIP is frozen. */
  featureCache?: FeatureCache;
  /** Default 'bce', the recipe's. */
  loss?: SegmentationLoss;
  /**
   * Parameters kept at their initial (or loaded) values although the selection above would train them: globs over
   * state-dict keys (`*` within a segment, `**` across), e.g. `clip.text_model.**`. Each must match some parameter.
   */
  freeze?: readonly string[];
  /**
   * Where the weights came from and other facts a resumed run must share (e.g. `{init, imageSize}`); stored in
   * checkpoints and compared on resume, since frozen weights are not checkpointed.
   */
  origin?: Record<string, unknown>;
  /**
   * Weight of the token-alignment loss added to the segmentation loss (`alignment.ts`; default 0: none, the
   * recipe). It trains the towers, so it needs `fullFinetune`.
   */
  alignment?: number;
}

/** Host-side inputs of one micro-batch, turned into tensors by `toTensors`. */
interface BatchTensors {
  /** The distinct images of the batch, [U, 3, S, S] (samples of one image with the same crop share a row). */
  pixels: tf.Tensor4D;
  /** Their values on the host, for the feature cache. */
  pixelValues: Float32Array;
  /** Row of `pixels` for each sample, [B]; undefined when every sample has its own image. */
  imageRow?: tf.Tensor1D;
  labels: tf.Tensor3D;
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  /** Support images of the rows that have one, [Ns, 3, S, S]; undefined when no row has one. */
  support?: tf.Tensor4D;
  /** [B, Ns] one-hot: row b selects its support, or is all zeros without one. */
  supportSelect?: tf.Tensor2D;
  /** [B, 1] text weights. */
  weights: tf.Tensor2D;
}

export class SegmentationTask implements TrainingTask {
  readonly model: CLIPSegForImageSegmentation;
  readonly pipeline: SamplePipeline;
  readonly tokenizer: CLIPTokenizer;
  readonly fullFinetune: boolean;
  readonly featureCache: FeatureCache | undefined;
  readonly loss: SegmentationLoss;
  readonly freeze: readonly string[];
  readonly origin: Record<string, unknown>;
  /** The token-alignment term, when its weight is above 0. */
  readonly alignment: TokenAlignment | undefined;

  constructor(options: SegmentationTaskOptions) {
    this.origin = options.origin ?? {};
    this.model = options.model;
    this.pipeline = options.pipeline;
    this.tokenizer = options.tokenizer;
    this.fullFinetune = options.fullFinetune ?? false;
    this.featureCache = this.fullFinetune ? undefined : options.featureCache;
    this.loss = checkSegmentationLoss(options.loss ?? 'bce', 'loss');
    const size = this.pipeline.options.size;
    const logits = this.model.logitsSize(size);
    if (logits !== size) {
      throw new ConfigError(`the model's logits are ${logits}x${logits} for ${size}x${size} inputs; training needs labels of the logits' size (choose a patch size whose head restores the input size)`);
    }
    this.model.setTrainable(this.fullFinetune ? 'all' : 'decoder');
    this.freeze = checkFreeze(options.freeze ?? [], this.model);
    const frozen = this.freeze.map(globToRegExp);
    for (const p of this.model.parameters()) if (frozen.some((r) => r.test(p.key))) p.trainable = false;
    const alignment = checkAlignmentWeight(options.alignment ?? 0, 'alignment');
    checkAlignmentSelection(alignment, this.fullFinetune, 'alignment');
    this.alignment = alignment > 0 ? new TokenAlignment(this.model, alignment) : undefined;
  }

  trainableParameters(): Map<string, tf.Variable> {
    const model = this.model.namedParameters().filter((p) => p.trainable).map((p): [string, tf.Variable] => [p.name, p.variable]);
    return new Map([...model, ...(this.alignment?.parameters() ?? [])]);
  }

  /** Releases the task's own variables (the alignment scalars); the model stays the caller's. */
  dispose(): void {
    this.alignment?.dispose();
  }

  configJson(): Record<string, unknown> {
    return this.model.config.toJSON();
  }

  state(): Record<string, unknown> {
    // Sample p of the run draws from Rng.derive(seed, 'sample', p) and epoch e's order from Rng.derive(seed, 'epoch', e),
    // so the seed and the optimizer step (stored by the trainer) fix the data position and every RNG stream.
    return {
      origin: this.origin,
      fullFinetune: this.fullFinetune,
      // Named only when it is not the default, so checkpoints written before the option existed still resume.
      ...(this.loss === 'bce' ? {} : { loss: this.loss }),
      ...(this.freeze.length === 0 ? {} : { freeze: this.freeze }),
      ...(this.alignment === undefined ? {} : { alignment: this.alignment.weight }),
      data: { samplesPerEpoch: this.pipeline.length, imageSize: this.pipeline.options.size },
      rng: { seed: this.pipeline.seed, streams: ["derive(seed, 'sample', position)", "derive(seed, 'epoch', epoch)"] },
    };
  }

  restore(state: Record<string, unknown>): void {
    const expected = this.state();
    const keys = new Set([...Object.keys(expected), ...Object.keys(state)]);
    const differences = [...keys].filter((k) => JSON.stringify(state[k]) !== JSON.stringify(expected[k]));
    if (differences.length > 0) {
      const detail = differences.map((k) => `${k}: ${JSON.stringify(state[k])} -> ${JSON.stringify(expected[k])}`).join('; ');
      throw new TrainingError(`cannot resume: the checkpoint was made with other data or model settings (${detail})`);
    }
  }

  async microBatch(index: number, size: number): Promise<MicroBatch> {
    const batch = await this.pipeline.batch(index, size);
    const t = this.toTensors(batch);
    if (this.fullFinetune) {
      return {
        size,
        loss: () => {
          const extract = this.model.config.extract_layers;
          const alignment = this.alignment;
          const layers = alignment === undefined ? extract : [...extract, alignment.layer];
          const hidden = expand(this.model.visionActivations(t.pixels, { layers }), t.imageRow);
          const cond = this.conditional(t);
          const segmentation = segmentationLoss(this.loss, this.model.decoder.forward(hidden.slice(0, extract.length), cond).logits, t.labels);
          if (alignment === undefined) return segmentation;
          return tf.add(segmentation, alignment.loss(hidden[extract.length]!, cond, t.labels)) as tf.Scalar;
        },
        dispose: () => disposeBatch(t),
      };
    }
    const unique =
      this.featureCache !== undefined
        ? await this.featureCache.activations(t.pixelValues, t.pixels.shape[0], batch.size)
        : this.model.visionActivations(t.pixels);
    const activations = expand(unique, t.imageRow);
    if (activations !== unique) tf.dispose(unique);
    const cond = this.conditional(t);
    return {
      size,
      loss: () => segmentationLoss(this.loss, this.model.decoder.forward(activations, cond).logits, t.labels),
      dispose: () => {
        tf.dispose([...activations, cond]);
        disposeBatch(t);
      },
    };
  }

  /** cond = w * text + (1 - w) * visual, [B, projection_dim]. */
  private conditional(t: BatchTensors): tf.Tensor2D {
    return tf.tidy(() => {
      const text = this.model.conditionalEmbeddings({ inputIds: t.inputIds, attentionMask: t.attentionMask });
      if (t.support === undefined || t.supportSelect === undefined) return text;
      const visual = this.model.conditionalEmbeddings({ conditionalPixelValues: t.support });
      // [B, Ns] one-hot selection times [Ns, P]: row b is its support's embedding, or zeros without one (w is 1
      // there). A matmul rather than a gather keeps the backward pass to plain matmuls.
      const rows = t.supportSelect.matMul(visual);
      return text.mul(t.weights).add(rows.mul(tf.sub(1, t.weights))) as tf.Tensor2D;
    });
  }

  private toTensors(batch: TrainingBatch): BatchTensors {
    const b = batch.batchSize;
    const s = batch.size;
    const maxLength = this.model.config.text_config.max_position_embeddings;
    const tokens = this.tokenizer.encodeBatch(batch.prompts, { padding: true, truncation: true, maxLength });
    const length = tokens.input_ids[0]!.length;
    const image = 3 * s * s;
    const valid = batch.supportValid.flatMap((v, i) => (v ? [i] : []));
    let support: tf.Tensor4D | undefined;
    let supportSelect: tf.Tensor2D | undefined;
    if (valid.length > 0) {
      const data = new Float32Array(valid.length * image);
      const select = new Float32Array(b * valid.length);
      valid.forEach((row, j) => {
        data.set(batch.supportPixelValues.subarray(row * image, (row + 1) * image), j * image);
        select[row * valid.length + j] = 1;
      });
      support = tf.tensor4d(data, [valid.length, 3, s, s]);
      supportSelect = tf.tensor2d(select, [b, valid.length]);
    }
    // Samples that show the same pixels (phrases of one image, un-augmented) share one vision pass.
    const rowOf = new Map<string, number>();
    const imageRow = new Int32Array(b);
    const firsts: number[] = [];
    for (let k = 0; k < b; k++) {
      const key = createHash('sha1').update(bytesOf(batch.pixelValues.subarray(k * image, (k + 1) * image))).digest('hex');
      let row = rowOf.get(key);
      if (row === undefined) {
        row = firsts.length;
        rowOf.set(key, row);
        firsts.push(k);
      }
      imageRow[k] = row;
    }
    const pixelValues = firsts.length === b ? batch.pixelValues : new Float32Array(firsts.length * image);
    if (firsts.length < b) firsts.forEach((k, row) => pixelValues.set(batch.pixelValues.subarray(k * image, (k + 1) * image), row * image));
    return {
      pixels: tf.tensor4d(pixelValues, [firsts.length, 3, s, s]),
      pixelValues,
      ...(firsts.length === b ? {} : { imageRow: tf.tensor1d(imageRow, 'int32') }),
      labels: tf.tensor3d(batch.labels, [b, s, s]),
      inputIds: tf.tensor2d(Int32Array.from(tokens.input_ids.flat()), [b, length], 'int32'),
      attentionMask: tf.tensor2d(Int32Array.from(tokens.attention_mask.flat()), [b, length], 'int32'),
      support,
      supportSelect,
      weights: tf.tensor2d(batch.textWeights, [b, 1]),
    };
  }
}

/** The `freeze` patterns, each a non-empty string that matches some parameter key of `model`; errors say `name`. */
export function checkFreeze(patterns: readonly string[], model: CLIPSegForImageSegmentation, name = 'freeze'): readonly string[] {
  if (!Array.isArray(patterns)) throw new InvalidArgumentError(`${name}: expected a list of glob patterns, got ${typeof patterns}`);
  const keys = model.parameters().map((p) => p.key);
  for (const pattern of patterns) {
    if (typeof pattern !== 'string' || pattern === '') throw new InvalidArgumentError(`${name}: expected non-empty glob strings, got ${JSON.stringify(pattern)}`);
    const regex = globToRegExp(pattern);
    if (!keys.some((k) => regex.test(k))) {
      throw new InvalidArgumentError(`${name}: '${pattern}' matches no parameter of the model (keys look like '${keys[0]}'; '*' matches within a segment, '**' across)`);
    }
  }
  return Object.freeze([...patterns]);
}

/** Activations per distinct image, [U, T, D], to one row per sample, [B, T, D]. */
function expand(activations: tf.Tensor3D[], imageRow: tf.Tensor1D | undefined): tf.Tensor3D[] {
  if (imageRow === undefined) return activations;
  return activations.map((a) => tf.gather(a, imageRow));
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function disposeBatch(t: BatchTensors): void {
  tf.dispose([t.pixels, t.labels, t.inputIds, t.attentionMask, t.weights]);
  if (t.support !== undefined) t.support.dispose();
  if (t.supportSelect !== undefined) t.supportSelect.dispose();
  if (t.imageRow !== undefined) t.imageRow.dispose();
}
