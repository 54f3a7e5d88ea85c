/**
 * Token alignment: an auxiliary loss for full fine-tuning (every tower trained), not part of CLIPSeg's recipe.
 *
 * Each patch token of the vision tower's last layer is mapped the way CLIP maps its CLS token to the image embedding
 * (`post_layernorm`, then `visual_projection`), and s * cos(token, conditional) + b is its logit of lying on the
 * target: BCE against the label at the token's centre pixel. Segmentation alone leaves that projection and final norm
 * idle; this loss asks the towers to agree per token, which CLIP's contrastive pretraining gives a pretrained model
 * and a model trained from scratch lacks. s and b are trained with the rest (no weight decay: they are scalars); they
 * start at 10 and -5, so that before the towers agree every token reads as off the target (sigmoid(-5) = 0.007).
 *
 * Weight 1 raised the demo model's first stage (1,500 steps) from test mIoU 0.618 to 0.629 in this trainer, and a
 * replica of that stage on transformers' CLIPSeg by 1.2 points of validation mIoU after 1,500 steps and 1.7 after
 * 3,000, mostly on tasks the colour alone decides. Over the demo's whole schedule the gain was gone (test mIoU 0.702
 * against 0.703, AP 0.580 against 0.617), so `npm run train:demo` does not use it unless asked (README, 'Training').
 */
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../layers/context.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { l2Normalize } from '../models/clipseg_model.js';
import type { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';
import { bceWithLogits } from '../models/losses.js';

const INITIAL_SCALE = 10;
const INITIAL_BIAS = -5;

/** Keys of the two scalars in the trainable-parameter map and in checkpoints (not model parameters: never exported). */
export const ALIGNMENT_SCALE_KEY = 'alignment.logit_scale';
export const ALIGNMENT_BIAS_KEY = 'alignment.logit_bias';

/** `value` as an alignment weight (a finite number >= 0), or an `InvalidArgumentError` naming `argument`. */
export function checkAlignmentWeight(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${argument}: expected a finite weight >= 0, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** Refuses a weight above 0 when CLIP is frozen (the loss would train nothing but s and b); errors say `argument`. */
export function checkAlignmentSelection(weight: number, fullFinetune: boolean, argument: string): void {
  if (weight > 0 && !fullFinetune) {
    throw new InvalidArgumentError(`${argument}: the token-alignment loss trains CLIP's towers and needs full fine-tuning (--full-finetune; fullFinetune from code), got weight ${weight} with CLIP frozen`);
  }
}

export class TokenAlignment {
  readonly weight: number;
  readonly scale: tf.Variable<tf.Rank.R0>;
  readonly bias: tf.Variable<tf.Rank.R0>;
  private readonly model: CLIPSegForImageSegmentation;

  constructor(model: CLIPSegForImageSegmentation, weight: number) {
    this.model = model;
    this.weight = checkAlignmentWeight(weight, 'alignment');
    this.scale = scalarVariable(INITIAL_SCALE);
    this.bias = scalarVariable(INITIAL_BIAS);
  }

  /** The vision layer whose tokens are aligned: the last, the one CLIP's projection reads. */
  get layer(): number {
    return this.model.config.vision_config.num_hidden_layers - 1;
  }

  parameters(): [string, tf.Variable][] {
    return [
      [ALIGNMENT_SCALE_KEY, this.scale],
      [ALIGNMENT_BIAS_KEY, this.bias],
    ];
  }

  /**
   * weight * BCE(s * cos(projected token, cond) + b, label at the token's centre), a mean over the tokens of the batch.
   * hidden: the last layer's output, [B, 1 + G*G, D] (CLS first); cond: [B, projection_dim]; labels: [B, S, S].
   */
  loss(hidden: tf.Tensor3D, cond: tf.Tensor2D, labels: tf.Tensor3D): tf.Scalar {
    const [batch, tokens, width] = hidden.shape;
    const patch = this.model.config.vision_config.patch_size;
    const [rows, size, side] = labels.shape;
    if (rows !== batch || side !== size) throw new ShapeError('labels', `square maps [${batch}, S, S] (one per row of hidden)`, labels.shape);
    const grid = Math.floor(size / patch);
    if (tokens !== 1 + grid * grid) {
      throw new ShapeError('hidden', `[${batch}, ${1 + grid * grid}, D] (CLS and ${grid} x ${grid} patch tokens of ${patch} px for ${size} px labels)`, hidden.shape);
    }
    const projection = this.model.config.projection_dim;
    if (cond.shape[0] !== batch || cond.shape[1] !== projection) throw new ShapeError('cond', `[${batch}, ${projection}]`, cond.shape);
    return tf.tidy(() => {
      const ctx = new ForwardContext();
      // Patch tokens without CLS: [B, 1 + G*G, D] -> [B, G*G, D]
      const patches = tf.slice(hidden, [0, 1, 0], [batch, grid * grid, width]);
      const vision = this.model.clip.visionModel.postLayernorm.forward(patches, ctx);
      const projected = l2Normalize(this.model.clip.visualProjection.forward(vision, ctx));
      // cond [B, P] -> [B, 1, P], broadcast over the tokens; the cosine is a product summed over P: [B, G*G]
      const cosine = tf.sum(tf.mul(projected, l2Normalize(cond).expandDims(1)), -1);
      const logits = tf.add(tf.mul(cosine, this.scale), this.bias);
      // The pixel at each token's centre, row-major as the tokens: [B, S, S] -> [B, G, G] -> [B, G*G]
      const half = Math.floor(patch / 2);
      const end = half + (grid - 1) * patch + 1;
      const centres = tf.stridedSlice(labels, [0, half, half], [batch, end, end], [1, patch, patch]).reshape([batch, grid * grid]);
      return tf.mul(bceWithLogits(logits, centres), this.weight) as tf.Scalar;
    });
  }

  dispose(): void {
    tf.dispose([this.scale, this.bias]);
  }
}

function scalarVariable(value: number): tf.Variable<tf.Rank.R0> {
  // The variable keeps its own handle on the data; the initial scalar is released.
  const initial = tf.scalar(value);
  const variable = tf.variable(initial, true);
  initial.dispose();
  return variable;
}
