/**
 * clipseg-tfjs without file or network access, for browsers and bundlers: configs, layers, models, the processor
 * (tokenizer, image processor, post-processing, visual prompts), activation maps and the error classes. Build a
 * model from a config and load weights with `loadStateDict`, a tokenizer from its vocabulary, and pass images as
 * `RawImage` pixel buffers or tensors.
 */
export * from './errors.js';
export * from './config/index.js';
export * from './layers/index.js';
export * from './models/index.js';

export * from './processor/tokenizer.js';
export { CLIP_BPE_FILE_NAME, CLIP_NUM_MERGES, type ClipVocabulary, clipTokenizerFromBpeGz, clipVocabularyFromBpeGz, clipVocabularyFromBpeText } from './processor/default_vocab.js';
export * from './processor/image.js';
export * from './processor/pillow_resize.js';
export * from './processor/image_processor.js';
export * from './processor/postprocess.js';
export * from './processor/colormap.js';
export * from './processor/visual_prompt.js';
export * from './processor/processor.js';

export * from './inspect/rollout.js';
export * from './inspect/heatmaps.js';
