/**
 * Training losses for segmentation logits [B, H, W] against 0/1 labels of the same shape.
 *
 * `bce` is the recipe's loss (`BCEWithLogitsLoss`, a mean over every pixel of the batch). Averaged over pixels, a
 * small object weighs in proportion to its area, while the evaluation's mIoU is a mean over tasks, where a 40-pixel
 * star counts as much as a half-image square. `bce+dice` adds a soft Dice term per sample, which weighs every sample
 * equally whatever its area; it is not part of the paper's recipe.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { bceWithLogits } from '../models/losses.js';

export const SEGMENTATION_LOSSES = ['bce', 'bce+dice'] as const;
export type SegmentationLoss = (typeof SEGMENTATION_LOSSES)[number];

/** `value` as a loss name, or an `InvalidArgumentError` naming `argument` (`loss`, `--loss`, ...). */
export function checkSegmentationLoss(value: unknown, argument: string): SegmentationLoss {
  if (!(SEGMENTATION_LOSSES as readonly unknown[]).includes(value)) {
    throw new InvalidArgumentError(`${argument}: expected one of ${SEGMENTATION_LOSSES.join(', ')}, got '${String(value)}'`);
  }
  return value as SegmentationLoss;
}

/**
 * Mean over samples of 1 - (2 sum(p y) + 1) / (sum(p) + sum(y) + 1) with p = sigmoid(logits): the +1 (as the
 * evaluation's IoU smoothing) makes an empty prediction of an empty label a perfect score, so negatives push p to 0.
 */
export function softDiceLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (!tf.util.arraysEqual(logits.shape, labels.shape)) {
    throw new ShapeError('labels', `the logits' shape [${logits.shape.join(', ')}]`, labels.shape);
  }
  if (logits.rank < 1) throw new ShapeError('logits', 'a batch of maps [B, ...]', logits.shape);
  return tf.tidy(() => {
    const batch = logits.shape[0]!;
    // [B, ...] -> [B, N]
    const p = tf.sigmoid(logits).reshape([batch, -1]);
    const y = labels.reshape([batch, -1]);
    const overlap = tf.sum(tf.mul(p, y), 1);
    const total = tf.add(tf.sum(p, 1), tf.sum(y, 1));
    const dice = tf.div(tf.add(tf.mul(overlap, 2), 1), tf.add(total, 1));
    return tf.mean(tf.sub(1, dice)) as tf.Scalar;
  });
}

/** The loss named `kind` of a batch of logits. */
export function segmentationLoss(kind: SegmentationLoss, logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  switch (checkSegmentationLoss(kind, 'loss')) {
    case 'bce':
      return bceWithLogits(logits, labels);
    case 'bce+dice':
      return tf.tidy(() => tf.add(bceWithLogits(logits, labels), softDiceLoss(logits, labels)) as tf.Scalar);
  }
}
