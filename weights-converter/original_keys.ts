/**
 * Key mapping from the paper's release (timojl/clipseg `CLIPDensePredT` decoder weights such as `rd64-uni.pth`,
 * plus OpenAI's CLIP `ViT-B-16.pt`) to transformers' CLIPSeg keys. The facts follow transformers'
 * `convert_clipseg_original_pytorch_to_hf.py` (rename_key / convert_state_dict), with the current `clip.` prefix
 * where that script still writes `clipseg.`:
 * - attention `in_proj_weight` / `in_proj_bias` are split in three equal row blocks: q, k, v;
 * - `visual.proj` and `text_projection` are stored [in, out] and become Linear weights [out, in];
 * - `reduce.*` (an unused layer of the original model), `model.*` (an alias of `clip_model.visual` in combined
 *   files) and the non-weight tensors of OpenAI's TorchScript file are dropped.
 */

export type OriginalTransform = 'copy' | 'transpose' | 'split_qkv';

export interface OriginalRule {
  pattern: RegExp;
  /** HF key(s) from the match; `split_qkv` rules give the q, k, v keys in that order. */
  target: (m: RegExpExecArray) => string | [string, string, string];
  transform: OriginalTransform;
}

const tower = (m: RegExpExecArray): string => (m[1] ? 'clip.vision_model' : 'clip.text_model');
const qkv = (prefix: string, kind: string): [string, string, string] => [
  `${prefix}.q_proj.${kind}`,
  `${prefix}.k_proj.${kind}`,
  `${prefix}.v_proj.${kind}`,
];
const RESBLOCK = String.raw`^(visual\.)?transformer\.resblocks\.(\d+)\.`;
const BLOCK = String.raw`^blocks\.(\d+)\.`;

/** Rules for the CLIP backbone, on keys as OpenAI's CLIP module names them (`clip_model.` removed). */
export const CLIP_RULES: readonly OriginalRule[] = [
  { pattern: /^visual\.class_embedding$/, target: () => 'clip.vision_model.embeddings.class_embedding', transform: 'copy' },
  { pattern: /^visual\.positional_embedding$/, target: () => 'clip.vision_model.embeddings.position_embedding.weight', transform: 'copy' },
  { pattern: /^visual\.conv1\.weight$/, target: () => 'clip.vision_model.embeddings.patch_embedding.weight', transform: 'copy' },
  { pattern: /^visual\.ln_pre\.(weight|bias)$/, target: (m) => `clip.vision_model.pre_layrnorm.${m[1]}`, transform: 'copy' },
  { pattern: /^visual\.ln_post\.(weight|bias)$/, target: (m) => `clip.vision_model.post_layernorm.${m[1]}`, transform: 'copy' },
  { pattern: /^visual\.proj$/, target: () => 'clip.visual_projection.weight', transform: 'transpose' },
  {
    pattern: new RegExp(`${RESBLOCK}attn\\.in_proj_(weight|bias)$`),
    target: (m) => qkv(`${tower(m)}.encoder.layers.${m[2]}.self_attn`, m[3]!),
    transform: 'split_qkv',
  },
  {
    pattern: new RegExp(`${RESBLOCK}attn\\.out_proj\\.(weight|bias)$`),
    target: (m) => `${tower(m)}.encoder.layers.${m[2]}.self_attn.out_proj.${m[3]}`,
    transform: 'copy',
  },
  {
    pattern: new RegExp(`${RESBLOCK}ln_([12])\\.(weight|bias)$`),
    target: (m) => `${tower(m)}.encoder.layers.${m[2]}.layer_norm${m[3]}.${m[4]}`,
    transform: 'copy',
  },
  {
    pattern: new RegExp(`${RESBLOCK}mlp\\.(c_fc|c_proj)\\.(weight|bias)$`),
    target: (m) => `${tower(m)}.encoder.layers.${m[2]}.mlp.${m[3] === 'c_fc' ? 'fc1' : 'fc2'}.${m[4]}`,
    transform: 'copy',
  },
  { pattern: /^token_embedding\.weight$/, target: () => 'clip.text_model.embeddings.token_embedding.weight', transform: 'copy' },
  { pattern: /^positional_embedding$/, target: () => 'clip.text_model.embeddings.position_embedding.weight', transform: 'copy' },
  { pattern: /^ln_final\.(weight|bias)$/, target: (m) => `clip.text_model.final_layer_norm.${m[1]}`, transform: 'copy' },
  { pattern: /^text_projection$/, target: () => 'clip.text_projection.weight', transform: 'transpose' },
  { pattern: /^logit_scale$/, target: () => 'clip.logit_scale', transform: 'copy' },
];

/** Rules for the decoder, on `CLIPDensePredT`'s own attribute names. */
export const DECODER_RULES: readonly OriginalRule[] = [
  { pattern: /^film_(mul|add)\.(weight|bias)$/, target: (m) => `decoder.film_${m[1]}.${m[2]}`, transform: 'copy' },
  { pattern: /^reduces\.(\d+)\.(weight|bias)$/, target: (m) => `decoder.reduces.${m[1]}.${m[2]}`, transform: 'copy' },
  {
    pattern: new RegExp(`${BLOCK}self_attn\\.in_proj_(weight|bias)$`),
    target: (m) => qkv(`decoder.layers.${m[1]}.self_attn`, m[2]!),
    transform: 'split_qkv',
  },
  {
    pattern: new RegExp(`${BLOCK}self_attn\\.out_proj\\.(weight|bias)$`),
    target: (m) => `decoder.layers.${m[1]}.self_attn.out_proj.${m[2]}`,
    transform: 'copy',
  },
  { pattern: new RegExp(`${BLOCK}linear([12])\\.(weight|bias)$`), target: (m) => `decoder.layers.${m[1]}.mlp.fc${m[2]}.${m[3]}`, transform: 'copy' },
  { pattern: new RegExp(`${BLOCK}norm([12])\\.(weight|bias)$`), target: (m) => `decoder.layers.${m[1]}.layer_norm${m[2]}.${m[3]}`, transform: 'copy' },
  { pattern: /^trans_conv\.(weight|bias)$/, target: (m) => `decoder.transposed_convolution.${m[1]}`, transform: 'copy' },
  { pattern: /^trans_conv\.(\d+)\.(weight|bias)$/, target: (m) => `decoder.transposed_convolution.${m[1]}.${m[2]}`, transform: 'copy' },
];

/** Tensors that are not weights of the HF model. */
export const DROPPED_CLIP_KEYS: readonly RegExp[] = [/^(input_resolution|context_length|vocab_size)$/, /^(visual\.)?transformer\.resblocks\.\d+\.attn_mask$/];
export const DROPPED_DECODER_KEYS: readonly RegExp[] = [/^reduce\.(weight|bias)$/, /^model\./];

/** Parts of `CLIPDensePredT` that transformers' CLIPSeg cannot express; weights using them cannot be converted. */
export const UNSUPPORTED_DECODER_KEYS: readonly { pattern: RegExp; feature: string }[] = [
  { pattern: /^reduce_cond\./, feature: 'reduce_cond (a projection of the conditional vector)' },
  { pattern: /^extra_blocks\./, feature: 'extra_blocks (residual decoder blocks after the main ones)' },
  { pattern: /^upsample_proj\./, feature: 'upsample_proj (bilinear upsampling head)' },
  { pattern: /^shift_vector$/, feature: 'shift_vector (fix_shift)' },
];

export type OriginalMapping =
  | { kind: 'map'; rule: OriginalRule; match: RegExpExecArray }
  | { kind: 'drop' }
  | { kind: 'unsupported'; feature: string }
  | { kind: 'unknown' };

function lookup(key: string, rules: readonly OriginalRule[], dropped: readonly RegExp[]): OriginalMapping {
  for (const rule of rules) {
    const match = rule.pattern.exec(key);
    if (match !== null) return { kind: 'map', rule, match };
  }
  return dropped.some((p) => p.test(key)) ? { kind: 'drop' } : { kind: 'unknown' };
}

/** How one CLIP key (OpenAI names, no `clip_model.` prefix) maps. */
export function mapClipKey(key: string): OriginalMapping {
  return lookup(key, CLIP_RULES, DROPPED_CLIP_KEYS);
}

/** How one key of a decoder (or combined) file maps; `clip_model.*` keys go through the CLIP rules. */
export function mapDecoderKey(key: string): OriginalMapping {
  if (key.startsWith('clip_model.')) return mapClipKey(key.slice('clip_model.'.length));
  const unsupported = UNSUPPORTED_DECODER_KEYS.find((u) => u.pattern.test(key));
  if (unsupported !== undefined) return { kind: 'unsupported', feature: unsupported.feature };
  return lookup(key, DECODER_RULES, DROPPED_DECODER_KEYS);
}

/** True when a state dict uses the original repository's names (decoder) rather than transformers' `clip.`/`decoder.`. */
export function looksOriginal(keys: readonly string[]): boolean {
  return !keys.some((k) => k.startsWith('clip.') || k.startsWith('decoder.')) && keys.some((k) => mapDecoderKey(k).kind === 'map');
}

/** True when the keys are OpenAI CLIP's (a backbone file such as `ViT-B-16.pt`) with no decoder. */
export function looksLikeClipBackbone(keys: readonly string[]): boolean {
  return keys.some((k) => k.startsWith('visual.')) && !keys.some((k) => /^(film_|reduces\.|blocks\.|trans_conv)/.test(k));
}
