/**
 * Processor files of local model folders, and the demo model shipped in `assets/demo-model/` used when no model is
 * named. (Hub ids are fetched into the cache by `src/io/pretrained.ts`, which then reads the folder through here.)
 */
import { existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { FileFormatError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { loadTokenizer } from '../io/tokenizer_files.js';
import { CLIPSegImageProcessor } from '../processor/image_processor.js';
import { CLIPSegProcessor } from '../processor/processor.js';
import type { CLIPTokenizer } from '../processor/tokenizer.js';
import { DEMO_MODEL_DIR } from './assets.js';

/** The shipped demo model's folder, checked to be present. */
export function demoModelFolder(): string {
  if (!existsSync(path.join(DEMO_MODEL_DIR, 'config.json'))) throw new FileNotFoundError(DEMO_MODEL_DIR, 'shipped demo model');
  return DEMO_MODEL_DIR;
}

/** A local model folder (default: the demo model), checked to be a folder. Hub ids are resolved by `src/io/pretrained.ts`. */
export function localModelFolder(dir?: string): string {
  if (dir === undefined) return demoModelFolder();
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError(`model: expected a folder, got ${JSON.stringify(dir)}`);
  if (!existsSync(dir)) throw new FileNotFoundError(dir, 'model folder');
  if (!statSync(dir).isDirectory()) throw new InvalidArgumentError(`model: expected a model folder, got the file ${dir}`);
  return dir;
}

/**
 * The local folder of a model: the demo model when `source` is absent, a folder as it is, and a hub id fetched
 * (config, weights and processor files) into the Hugging Face cache, whose snapshot folder is returned.
 */
export async function resolveModelFolder(source?: string, options: { revision?: string } = {}): Promise<string> {
  if (source === undefined || existsSync(source)) return localModelFolder(source);
  // Imported on use: the hub module itself reads processor files through this one.
  const { resolvePretrainedFolder } = await import('../io/pretrained.js');
  return resolvePretrainedFolder(source, { files: 'all', ...(options.revision === undefined ? {} : { revision: options.revision }) });
}

/** The tokenizer of a model folder: its own files when it has them, else the shipped CLIP vocabulary. */
export async function loadTokenizerFrom(folder?: string): Promise<CLIPTokenizer> {
  if (folder === undefined) return loadTokenizer();
  const dir = localModelFolder(folder);
  return existsSync(path.join(dir, 'vocab.json')) ? loadTokenizer(dir) : loadTokenizer();
}

/** The image processor of a model folder (default: the demo model): its `preprocessor_config.json`, else the CIDAS values. */
export async function loadImageProcessorFrom(folder?: string): Promise<CLIPSegImageProcessor> {
  const dir = localModelFolder(folder);
  const file = path.join(dir, 'preprocessor_config.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new CLIPSegImageProcessor();
    throw new FileFormatError(file, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(file, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return CLIPSegImageProcessor.fromConfig(json);
}

/** The processor of a local model folder (default: the demo model): tokenizer and image processor. */
export async function loadProcessorFrom(folder?: string): Promise<CLIPSegProcessor> {
  const dir = localModelFolder(folder);
  const [tokenizer, imageProcessor] = await Promise.all([loadTokenizerFrom(dir), loadImageProcessorFrom(dir)]);
  return new CLIPSegProcessor(tokenizer, imageProcessor);
}
