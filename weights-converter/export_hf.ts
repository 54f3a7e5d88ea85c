/**
 * `exportToHF`: a model of this package -> a folder transformers' `CLIPSegForImageSegmentation.from_pretrained`
 * and `CLIPSegProcessor.from_pretrained` load: `model.safetensors` in PyTorch layouts under HF keys (metadata
 * `format: pt`), `config.json`, `preprocessor_config.json` and the tokenizer files.
 */
import { saveModelFolder } from '../src/io/model_files.js';
import type { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { type ProcessorFilesResult, writeProcessorFiles } from './processor_files.js';

export interface ExportOptions {
  /** A model folder whose processor files are copied (default: the standard CLIPSeg ones). */
  processorFrom?: string;
}

export async function exportToHF(model: CLIPSegForImageSegmentation, dir: string, options: ExportOptions = {}): Promise<ProcessorFilesResult> {
  await saveModelFolder(model, dir, { layout: 'hf' });
  return writeProcessorFiles(dir, options.processorFrom);
}
