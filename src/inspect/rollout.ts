/**
 * Attention maps of a ViT over its patch grid: the CLS token's attention per layer and head, and attention rollout
 * (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020): average the heads, add the identity for the
 * residual path, renormalise the rows, and multiply the layers together from the first to the last.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError } from '../errors.js';

/** Side of the square patch grid behind `tokens` tokens (CLS + side²). */
export function gridSide(tokens: number): number {
  const side = Math.round(Math.sqrt(tokens - 1));
  if (side < 1 || side * side !== tokens - 1) {
    throw new InvalidArgumentError(`attention: ${tokens} tokens is not 1 + a square number of patches`);
  }
  return side;
}

function checkAttention(name: string, attn: tf.Tensor): [number, number, number] {
  if (attn.rank !== 4 || attn.shape[2] !== attn.shape[3]) throw new ShapeError(name, '[B, heads, T, T]', attn.shape);
  return [attn.shape[0]!, attn.shape[1]!, attn.shape[2]!];
}

/**
 * The CLS token's attention over the patches: `[B, heads + 1, side, side]`, the heads in order and their mean last.
 */
export function clsAttentionMaps(attn: tf.Tensor, name = 'attention'): tf.Tensor4D {
  const [batch, heads, tokens] = checkAttention(name, attn);
  const side = gridSide(tokens);
  return tf.tidy(() => {
    // [B, H, T, T] -> [B, H, T-1]: row 0 (CLS as query), patch columns only.
    const cls = attn.slice([0, 0, 0, 1], [batch, heads, 1, tokens - 1]).reshape([batch, heads, tokens - 1]);
    const withMean = tf.concat([cls, cls.mean(1, true)], 1);
    // [B, H+1, T-1] -> [B, H+1, side, side]: patches are row-major.
    return withMean.reshape([batch, heads + 1, side, side]) as tf.Tensor4D;
  });
}

/**
 * Attention rollout through `attentions` (first layer first), each `[B, heads, T, T]`. Returns the rolled-out
 * matrix `[B, T, T]`: row t says how much each input token flows into token t at the last layer.
 */
export function attentionRollout(attentions: readonly tf.Tensor[]): tf.Tensor3D {
  if (attentions.length === 0) throw new InvalidArgumentError('attention rollout: expected at least one layer of attention probabilities');
  const [batch, , tokens] = checkAttention('attentions[0]', attentions[0]!);
  attentions.forEach((a, i) => {
    const [b, , t] = checkAttention(`attentions[${i}]`, a);
    if (b !== batch || t !== tokens) throw new ShapeError(`attentions[${i}]`, `[${batch}, heads, ${tokens}, ${tokens}]`, a.shape);
  });
  return tf.tidy(() => {
    const eye = tf.eye(tokens).expandDims(0);
    let rolled: tf.Tensor | undefined;
    for (const attn of attentions) {
      // [B, H, T, T] -> [B, T, T]
      const fused = attn.mean(1).add(eye);
      const normalised = fused.div(fused.sum(-1, true));
      rolled = rolled === undefined ? normalised : tf.matMul(normalised, rolled);
    }
    return rolled as tf.Tensor3D;
  });
}

/** The CLS row of a rollout over the patch grid: `[B, side, side]`. */
export function rolloutClsMap(rollout: tf.Tensor3D): tf.Tensor3D {
  const [batch, tokens] = [rollout.shape[0], rollout.shape[1]];
  const side = gridSide(tokens);
  return tf.tidy(() =>
    // [B, T, T] -> [B, 1, T-1] -> [B, side, side]
    rollout.slice([0, 0, 1], [batch, 1, tokens - 1]).reshape([batch, side, side]) as tf.Tensor3D,
  );
}

/** Per-token L2 norm of a token sequence `[B, T, D]` (CLS first) laid out over the patch grid: `[B, side, side]`. */
export function tokenNormMap(hidden: tf.Tensor, name = 'hidden state'): tf.Tensor3D {
  if (hidden.rank !== 3) throw new ShapeError(name, '[B, T, D]', hidden.shape);
  const [batch, tokens] = [hidden.shape[0]!, hidden.shape[1]!];
  const side = gridSide(tokens);
  return tf.tidy(() => {
    const patches = hidden.slice([0, 1, 0], [batch, tokens - 1, hidden.shape[2]!]);
    // [B, T-1, D] -> [B, T-1] -> [B, side, side]
    return patches.square().sum(-1).sqrt().reshape([batch, side, side]) as tf.Tensor3D;
  });
}
