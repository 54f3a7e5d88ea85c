/**
 * Model folders on disk: `config.json` plus `model.safetensors`, in HF layout (as transformers'
 * `save_pretrained` writes them) or this library's tfjs layout (metadata `{"format": "clipseg-tfjs",
 * "layout": "tfjs"}`). Importing this module registers the folder reader as the `fromPretrained` loader.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { selectBackend, type BackendName } from '../backend.js';
import { CLIPSegConfig } from '../config/index.js';
import { ConfigError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import type { ModelOptions } from '../models/base.js';
import { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';
import { layoutOfMetadata, SAFETENSORS_METADATA, type WeightLayout } from '../models/layout.js';
import { type PretrainedFiles, registerPretrainedLoader } from '../models/pretrained.js';
import { loadStateDict, stateDict } from '../models/state_dict.js';
import { writeFileAtomic } from './atomic.js';
import { openSafetensors, writeSafetensors } from './safetensors.js';
import { exists, isDirectory } from './fs_checks.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

/**
 * Reads a folder's config and opens its weights, without building a model. The weights stay on disk until a
 * tensor is asked for (one tensor in memory at a time while a model loads); the file must not change meanwhile.
 */
export async function readModelFolder(dir: string): Promise<PretrainedFiles> {
  if (!(await isDirectory(dir))) throw new FileNotFoundError(dir, 'model folder');
  const configPath = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(configPath, 'utf8');
  } catch {
    throw new FileNotFoundError(configPath, 'model config');
  }
  const config = CLIPSegConfig.fromJSONString(text, configPath);
  const weightsPath = path.join(dir, WEIGHTS_FILE);
  if (!(await exists(weightsPath))) {
    const hint = (await exists(path.join(dir, 'pytorch_model.bin')))
      ? ' (the folder has pytorch_model.bin: convert it to safetensors first)'
      : '';
    throw new FileNotFoundError(`${weightsPath}${hint}`, 'model weights');
  }
  const weights = await openSafetensors(weightsPath);
  return { config, weights, layout: layoutOfMetadata(weights.metadata), source: dir };
}

export interface LoadFolderOptions extends ModelOptions {
  /** Select this backend before building the model (default: keep the current one). */
  backend?: BackendName;
}

/** Builds a `CLIPSegForImageSegmentation` from a model folder; keys and shapes must match exactly. */
export async function loadModelFolder(dir: string, options: LoadFolderOptions = {}): Promise<CLIPSegForImageSegmentation> {
  if (options.backend !== undefined) await selectBackend(options.backend);
  const files = await readModelFolder(dir);
  const model = new CLIPSegForImageSegmentation(files.config, { ...options, initialize: false });
  try {
    loadStateDict(model, files.weights, files.layout);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

export interface SaveFolderOptions {
  /** `tfjs` (default) loads without transposes; `hf` is what transformers' `from_pretrained` reads. */
  layout?: WeightLayout;
}

/** Writes `config.json` and `model.safetensors` (each atomically), creating the folder if needed. */
export async function saveModelFolder(model: CLIPSegForImageSegmentation, dir: string, options: SaveFolderOptions = {}): Promise<void> {
  const layout = options.layout ?? 'tfjs';
  if (layout !== 'tfjs' && layout !== 'hf') throw new InvalidArgumentError(`layout: expected 'tfjs' or 'hf', got '${String(layout)}'`);
  if (!(model instanceof CLIPSegForImageSegmentation)) throw new ConfigError('saveModelFolder: expected a CLIPSegForImageSegmentation');
  await fs.mkdir(dir, { recursive: true });
  const metadata = layout === 'tfjs' ? { ...SAFETENSORS_METADATA } : { format: 'pt' };
  await writeSafetensors(path.join(dir, WEIGHTS_FILE), stateDict(model, layout), metadata);
  await writeFileAtomic(path.join(dir, CONFIG_FILE), model.config.toJSONString());
}

registerPretrainedLoader((source) => readModelFolder(source));
