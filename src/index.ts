/**
 * clipseg-tfjs for Node: CLIPSeg (text- and image-prompted segmentation) on TensorFlow.js, numerically matching
 * Hugging Face transformers' `CLIPSegForImageSegmentation`.
 *
 * - `ClipSeg`: load a model (folder, hub id, or the shipped demo model) and segment images in one call.
 * - `CLIPSegForImageSegmentation`, `CLIPSegModel`, the towers and the decoder: the model itself, with HF's keys,
 *   outputs and activation capture by module name.
 * - `CLIPSegProcessor`, `CLIPTokenizer`, `CLIPSegImageProcessor`: HF-exact inputs; post-processing and visual prompts.
 * - Files and the hub: images, safetensors, PyTorch checkpoints (read without running code), model folders, the
 *   Hugging Face cache. Errors are `ClipSegError` subclasses with a stable `code`.
 *
 * Importing this entry registers the Node loaders behind every `fromPretrained`. For browsers use
 * `clipseg-tfjs/browser`, which has no file or network access.
 */
export * from './browser.js';

export { ClipSeg } from './clipseg.js';
export type { ClipSegOptions, InspectOptions, InspectResult, SegmentOptions, Segmentation } from './clipseg.js';
export type { EmbeddingPrompt, PreparedVisualPrompt, Prompt, VisualPrompt } from './pipeline/prompts.js';
export { DEFAULT_TEXT_CACHE_SIZE } from './pipeline/prompts.js';
export { LruCache } from './pipeline/lru.js';
export { DEMO_MODEL_DIR, EXAMPLES_DIR, packageRoot } from './pipeline/assets.js';
export { loadImageProcessorFrom, loadProcessorFrom, loadTokenizerFrom, resolveModelFolder } from './pipeline/sources.js';

export {
  BACKEND_ENV,
  BACKEND_NAMES,
  type BackendName,
  type BackendOptions,
  currentBackend,
  MAX_WASM_THREADS,
  selectBackend,
  WASM_THREADS_ENV,
  wasmThreads,
} from './backend.js';

export { DEFAULT_MAX_PIXELS, type ImageSource, type LoadImageOptions, decodeImage, encodePng, loadImage, loadLegendFont, rawImageFromTensor, savePng } from './io/image_io.js';
export { drawLegend, type LegendFont, type LegendPlacement, OVERLAY_COLORS, type OverlayLayer, type OverlayOptions, overlayMasks, type RGB } from './processor/overlay.js';
export * from './io/safetensors.js';
export { writeFileAtomic } from './io/atomic.js';
export { loadTokenizer } from './io/tokenizer_files.js';
export { CONFIG_FILE, WEIGHTS_FILE, loadModelFolder, readModelFolder, saveModelFolder } from './io/model_files.js';
export type { LoadFolderOptions, SaveFolderOptions } from './io/model_files.js';
export { openWeights, readPretrained, resolvePretrainedFolder } from './io/pretrained.js';
export type { OpenedWeights, PretrainedSourceOptions, TensorReader, WeightsFormat } from './io/pretrained.js';
export { hubCacheDir, hubEndpoint, hubFile, hubOffline, isHubRepoId, type HubOptions } from './io/hub.js';
export { parseTorchCheckpoint, readTorchCheckpoint, TorchCheckpoint, type TorchCheckpointFormat } from './io/torch_checkpoint.js';
