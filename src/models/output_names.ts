/**
 * Output objects flattened to transformers' field names (`vision_model_output.hidden_states.3`, ...), the naming
 * of `clipseg inspect` files and of the reference fixtures.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BaseModelOutputWithPooling, CLIPSegImageSegmentationOutput, CLIPSegOutput, VisionModelOutput } from './outputs.js';

type Named = Record<string, tf.Tensor>;

function put(out: Named, name: string, tensor: tf.Tensor | undefined): void {
  if (tensor !== undefined) out[name] = tensor;
}

function putTower(out: Named, prefix: string, tower: VisionModelOutput | BaseModelOutputWithPooling): void {
  put(out, `${prefix}.last_hidden_state`, tower.lastHiddenState);
  put(out, `${prefix}.pooler_output`, tower.poolerOutput);
  tower.hiddenStates?.forEach((h, i) => put(out, `${prefix}.hidden_states.${i}`, h));
  tower.attentions?.forEach((a, i) => put(out, `${prefix}.attentions.${i}`, a));
}

/** `logits`, `conditional_embeddings`, `pooled_output`, `loss`, `vision_model_output.*`, `decoder_output.*`. */
export function segmentationOutputNames(output: CLIPSegImageSegmentationOutput): Named {
  const out: Named = {};
  put(out, 'logits', output.logits);
  put(out, 'conditional_embeddings', output.conditionalEmbeddings);
  put(out, 'pooled_output', output.pooledOutput);
  put(out, 'loss', output.loss);
  putTower(out, 'vision_model_output', output.visionModelOutput);
  output.decoderOutput.hiddenStates?.forEach((h, i) => put(out, `decoder_output.hidden_states.${i}`, h));
  output.decoderOutput.attentions?.forEach((a, i) => put(out, `decoder_output.attentions.${i}`, a));
  return out;
}

/** `loss`, `logits_per_image`, `logits_per_text`, `text_embeds`, `image_embeds`, `text_model_output.*`, `vision_model_output.*`. */
export function clipOutputNames(output: CLIPSegOutput): Named {
  const out: Named = {};
  put(out, 'loss', output.loss);
  put(out, 'logits_per_image', output.logitsPerImage);
  put(out, 'logits_per_text', output.logitsPerText);
  put(out, 'text_embeds', output.textEmbeds);
  put(out, 'image_embeds', output.imageEmbeds);
  putTower(out, 'text_model_output', output.textModelOutput);
  putTower(out, 'vision_model_output', output.visionModelOutput);
  return out;
}
