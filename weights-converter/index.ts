/**
 * `clipseg-tfjs/weights-converter`: conversion of CLIPSeg weights into this package's model folders, and export of
 * models back to the Hugging Face layout.
 */
export { convertCheckpoint, type ConvertOptions, type ConvertSummary, type OutputDType } from './convert.js';
export { exportToHF, type ExportOptions } from './export_hf.js';
export { inferConfig, inferConfigJson, mergeConfigJson } from './infer_config.js';
export {
  CLIP_RULES,
  DECODER_RULES,
  looksLikeClipBackbone,
  looksOriginal,
  mapClipKey,
  mapDecoderKey,
  type OriginalMapping,
  type OriginalRule,
} from './original_keys.js';
export {
  STANDARD_PREPROCESSOR_CONFIG,
  STANDARD_SPECIAL_TOKENS_MAP,
  STANDARD_TOKENIZER_CONFIG,
  standardTokenizerFiles,
  writeProcessorFiles,
  type ProcessorFilesResult,
} from './processor_files.js';
export { formatSummary } from './summary.js';
