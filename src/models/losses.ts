/** The two losses transformers' CLIPSeg classes compute. */
import * as tf from '@tensorflow/tfjs';
import { ShapeError } from '../errors.js';

/**
 * `torch.nn.BCEWithLogitsLoss()` (mean over all elements), in the overflow-free form
 * max(x, 0) - x*y + log(1 + exp(-|x|)). Labels are floats in [0, 1] with the logits' shape.
 */
export function bceWithLogits(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (!tf.util.arraysEqual(logits.shape, labels.shape)) {
    throw new ShapeError('labels', `the logits' shape [${logits.shape.join(', ')}]`, labels.shape);
  }
  return tf.tidy(() => {
    const perElement = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.mean(perElement) as tf.Scalar;
  });
}

/** Mean cross-entropy of each row of a square [N, N] matrix against its diagonal. */
function diagonalCrossEntropy(logits: tf.Tensor2D): tf.Scalar {
  const n = logits.shape[0];
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.eye(n)), 1);
  return tf.neg(tf.mean(picked)) as tf.Scalar;
}

/** CLIP's symmetric contrastive loss on logits_per_text [N, N]: mean of the text and image cross-entropies. */
export function contrastiveLoss(logitsPerText: tf.Tensor2D): tf.Scalar {
  const [rows, cols] = logitsPerText.shape;
  if (rows !== cols) throw new ShapeError('logitsPerText', 'a square matrix (as many texts as images) for the contrastive loss', logitsPerText.shape);
  return tf.tidy(() => tf.div(tf.add(diagonalCrossEntropy(logitsPerText), diagonalCrossEntropy(tf.transpose(logitsPerText))), 2) as tf.Scalar);
}
