/**
 * Output objects, with HF's field names in camelCase. Every tensor in them belongs to the caller
 * (`tf.dispose(output)` releases them all); hidden states and attentions are indexed exactly as in transformers.
 */
import type * as tf from '@tensorflow/tfjs';

/** `BaseModelOutputWithPooling` of a text or vision tower. */
export interface BaseModelOutputWithPooling {
  /** [B, T, D]. Vision: output of the last encoder layer. Text: after final_layer_norm. */
  lastHiddenState: tf.Tensor3D;
  /** [B, D]. Vision: post_layernorm(CLS). Text: the EOS token of lastHiddenState. */
  poolerOutput: tf.Tensor2D;
  /** Entry 0 is the encoder input (vision: after pre_layrnorm), entry k the output of layer k-1. */
  hiddenStates?: tf.Tensor3D[];
  /** [B, H, T, T] per layer. */
  attentions?: tf.Tensor4D[];
}

/** The vision part of a segmentation output; the last-layer fields are absent when `computePooled` is false. */
export interface VisionModelOutput {
  lastHiddenState?: tf.Tensor3D;
  poolerOutput?: tf.Tensor2D;
  hiddenStates?: tf.Tensor3D[];
  attentions?: tf.Tensor4D[];
}

export interface CLIPSegDecoderOutput {
  /** [N, S, S] raw mask logits. */
  logits: tf.Tensor3D;
  /** The output of each decoder layer, [N, T, reduce_dim] (no embedding entry). */
  hiddenStates?: tf.Tensor3D[];
  /** [N, heads, T, T] per decoder layer. */
  attentions?: tf.Tensor4D[];
}

export interface CLIPSegImageSegmentationOutput {
  /** BCE-with-logits (mean), when labels were given. */
  loss?: tf.Scalar;
  /** [N, S, S]. */
  logits: tf.Tensor3D;
  /** [N, projection_dim], the conditioning actually used. */
  conditionalEmbeddings: tf.Tensor2D;
  /** [B, projection_dim] = visual_projection(pooler_output); absent when `computePooled` is false. */
  pooledOutput?: tf.Tensor2D;
  visionModelOutput: VisionModelOutput;
  decoderOutput: CLIPSegDecoderOutput;
  /** Tensors kept by the `capture` option, keyed `<module>`, `<module>:input`, `<module>:attn_weights`. */
  captures?: Record<string, tf.Tensor>;
}

export interface CLIPSegOutput {
  /** Symmetric contrastive loss, when `returnLoss` is set. */
  loss?: tf.Scalar;
  /** [images, texts]. */
  logitsPerImage: tf.Tensor2D;
  /** [texts, images]. */
  logitsPerText: tf.Tensor2D;
  /** L2-normalised text_projection(pooled text). */
  textEmbeds: tf.Tensor2D;
  /** L2-normalised visual_projection(pooled image). */
  imageEmbeds: tf.Tensor2D;
  textModelOutput: BaseModelOutputWithPooling;
  visionModelOutput: BaseModelOutputWithPooling;
  captures?: Record<string, tf.Tensor>;
}
