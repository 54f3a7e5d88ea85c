/**
 * Where model files come from: a local folder, a hub id (resolved into the Hugging Face cache), or, when nothing is
 * named, the demo model shipped in `assets/demo-model/`.
 */
import { existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { FileFormatError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { hubFile, isHubRepoId } from '../io/hub.js';
import { loadTokenizer } from '../io/tokenizer_files.js';
import { CLIPSegImageProcessor } from '../processor/image_processor.js';
import { CLIPSegProcessor } from '../processor/processor.js';
import type { CLIPTokenizer } from '../processor/tokenizer.js';
import { DEMO_MODEL_DIR } from './assets.js';

/** Files besides the weights that a model folder may carry; fetched for hub ids so the processor can read them. */
const PROCESSOR_FILES = ['config.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

export interface ResolveOptions {
  /** Hub revision (branch, tag or commit) when the source is a hub id. */
  revision?: string;
}

/**
 * The local folder holding a model's config and processor files. A hub id (`org/name`) that is not an existing
 * path is fetched into (or found in) the Hugging Face cache; its snapshot folder is returned.
 */
export async function resolveModelFolder(source?: string, options: ResolveOptions = {}): Promise<string> {
  if (source === undefined) {
    if (!existsSync(path.join(DEMO_MODEL_DIR, 'config.json'))) throw new FileNotFoundError(DEMO_MODEL_DIR, 'shipped demo model');
    return DEMO_MODEL_DIR;
  }
  if (typeof source !== 'string' || source.length === 0) {
    throw new InvalidArgumentError(`model: expected a folder or a hub id, got ${JSON.stringify(source)}`);
  }
  if (existsSync(source)) {
    if (!statSync(source).isDirectory()) throw new InvalidArgumentError(`model: expected a model folder, got the file ${source}`);
    return source;
  }
  if (!isHubRepoId(source) || !source.includes('/')) throw new FileNotFoundError(source, 'model folder');
  const revision = options.revision === undefined ? {} : { revision: options.revision };
  const fetched = await Promise.all(PROCESSOR_FILES.map((file) => hubFile(source, file, revision)));
  const config = fetched[0];
  if (config === undefined) throw new FileNotFoundError(`${source}/config.json`, 'model config on the hub');
  return path.dirname(config);
}

/** The tokenizer of a model: its own files when the folder has them, else the shipped CLIP vocabulary. */
export async function loadTokenizerFrom(source?: string): Promise<CLIPTokenizer> {
  if (source === undefined) return loadTokenizer();
  const dir = await resolveModelFolder(source);
  return existsSync(path.join(dir, 'vocab.json')) ? loadTokenizer(dir) : loadTokenizer();
}

/** The image processor of a model: its `preprocessor_config.json`, else the CIDAS values. */
export async function loadImageProcessorFrom(source?: string): Promise<CLIPSegImageProcessor> {
  const dir = await resolveModelFolder(source);
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

/** `CLIPSegProcessor.fromPretrained` for Node: tokenizer and image processor of the same model. */
export async function loadProcessorFrom(source?: string): Promise<CLIPSegProcessor> {
  const [tokenizer, imageProcessor] = await Promise.all([loadTokenizerFrom(source), loadImageProcessorFrom(source)]);
  return new CLIPSegProcessor(tokenizer, imageProcessor);
}
