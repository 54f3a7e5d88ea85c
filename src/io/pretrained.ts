/**
 * Where `fromPretrained` finds a model: a local folder (HF layout or converted), a weights file, or a hub id
 * (`org/name`, optionally `org/name@revision`) fetched into the Hugging Face cache. Weights are read from the first
 * of `model.safetensors`, sharded safetensors (`model.safetensors.index.json`), `pytorch_model.bin` or a sharded
 * `pytorch_model.bin.index.json`. Safetensors files stay on disk after their headers are checked: loading reads
 * one tensor at a time (on wasm straight into its tensor's memory), so the files must not change until the model
 * is loaded. The PyTorch ones go through the safe checkpoint reader, in memory.
 *
 * Importing this module registers it as the loader of every model class and of `CLIPSegProcessor`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CLIPSegConfig } from '../config/index.js';
import { ConfigError, FileFormatError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { layoutOfMetadata, type WeightLayout } from '../models/layout.js';
import { type PretrainedFiles, type PretrainedOptions, registerPretrainedLoader } from '../models/pretrained.js';
import { loadProcessorFrom } from '../pipeline/sources.js';
import { CLIPSegProcessor } from '../processor/processor.js';
import { type HubOptions, hubFile, isHubRepoId } from './hub.js';
import { CONFIG_FILE, WEIGHTS_FILE } from './model_files.js';
import { type DType, openSafetensors } from './safetensors.js';
import { readTorchCheckpoint } from './torch_checkpoint.js';
import { exists, isDirectory } from './fs_checks.js';

export const SHARDED_SAFETENSORS_INDEX = 'model.safetensors.index.json';
export const PYTORCH_WEIGHTS = 'pytorch_model.bin';
export const SHARDED_PYTORCH_INDEX = 'pytorch_model.bin.index.json';
/** In order of preference. */
export const WEIGHT_FILES = [WEIGHTS_FILE, SHARDED_SAFETENSORS_INDEX, PYTORCH_WEIGHTS, SHARDED_PYTORCH_INDEX] as const;
export const PREPROCESSOR_FILE = 'preprocessor_config.json';
export const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** Reading access to a checkpoint's tensors, whatever its container. */
export interface TensorReader {
  readonly source: string;
  keys(): string[];
  has(key: string): boolean;
  info(key: string): { dtype: DType; shape: number[] };
  getFloat32(key: string): Float32Array;
  /** Row-major little-endian bytes in the stored dtype. */
  getBytes(key: string): Uint8Array;
  /**
   * Present when the tensors are read from disk on demand: the tensor as float32 written into the start of
   * `target` (at least its size), returning that view, so loading needs no array per tensor.
   */
  readonly readFloat32Into?: (key: string, target: Float32Array) => Float32Array;
}

export type WeightsFormat = 'safetensors' | 'sharded-safetensors' | 'pytorch' | 'sharded-pytorch';

export interface OpenedWeights {
  reader: TensorReader;
  layout: WeightLayout;
  format: WeightsFormat;
  /** The files read, in order. */
  files: string[];
  /** Safetensors metadata (of the first shard), empty for PyTorch files. */
  metadata: Readonly<Record<string, string>>;
}

/** Tensors gathered from one or more files, each key owned by exactly one of them. */
class Weights implements TensorReader {
  readonly readFloat32Into?: (key: string, target: Float32Array) => Float32Array;

  constructor(
    readonly source: string,
    private readonly owners: Map<string, TensorReader>,
  ) {
    // Offered only when every file has it: the PyTorch reader, which holds its file in memory, does not.
    if ([...owners.values()].every((owner) => owner.readFloat32Into !== undefined)) {
      this.readFloat32Into = (key, target) => this.owner(key).readFloat32Into!(key, target);
    }
  }

  keys(): string[] {
    return [...this.owners.keys()];
  }

  has(key: string): boolean {
    return this.owners.has(key);
  }

  info(key: string): { dtype: DType; shape: number[] } {
    const { dtype, shape } = this.owner(key).info(key);
    return { dtype, shape: [...shape] };
  }

  getBytes(key: string): Uint8Array {
    return this.owner(key).getBytes(key);
  }

  getFloat32(key: string): Float32Array {
    return this.owner(key).getFloat32(key);
  }

  private owner(key: string): TensorReader {
    const owner = this.owners.get(key);
    if (owner === undefined) throw new FileFormatError(this.source, `no tensor named '${key}'`);
    return owner;
  }
}

async function openFile(file: string): Promise<{ reader: TensorReader; metadata: Readonly<Record<string, string>> }> {
  if (file.endsWith('.safetensors')) {
    const st = await openSafetensors(file);
    return { reader: st, metadata: st.metadata };
  }
  return { reader: await readTorchCheckpoint(file), metadata: {} };
}

/** Opens a weights file, or the preferred weights file of a folder. */
export async function openWeights(fileOrFolder: string): Promise<OpenedWeights> {
  let file = fileOrFolder;
  if (await isDirectory(fileOrFolder)) {
    const found = await firstExisting(fileOrFolder, WEIGHT_FILES);
    if (found === undefined) throw new FileNotFoundError(`${fileOrFolder} (none of ${WEIGHT_FILES.join(', ')})`, 'model weights');
    file = found;
  } else if (!(await exists(fileOrFolder))) {
    throw new FileNotFoundError(fileOrFolder, 'model weights');
  }
  if (file.endsWith('.index.json')) return openSharded(file);
  const { reader, metadata } = await openFile(file);
  const owners = new Map(reader.keys().map((k) => [k, reader]));
  const format: WeightsFormat = file.endsWith('.safetensors') ? 'safetensors' : 'pytorch';
  return { reader: new Weights(file, owners), layout: layoutOfMetadata(metadata), format, files: [file], metadata };
}

async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const candidate = path.join(dir, name);
    if (await exists(candidate)) return candidate;
  }
  return undefined;
}

/** The shard file names an index lists, validated as plain names in the index's folder. */
export function parseShardIndex(text: string, source: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(source, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new FileFormatError(source, 'expected an object with a "weight_map" of tensor name -> shard file');
  }
  const map = new Map<string, string>();
  for (const [key, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || !/^[\w.-]+$/.test(shard) || shard.startsWith('.')) {
      throw new FileFormatError(source, `weight_map['${key}']: expected a shard file name in the same folder, got ${JSON.stringify(shard)}`);
    }
    map.set(key, shard);
  }
  if (map.size === 0) throw new FileFormatError(source, 'weight_map is empty');
  return map;
}

async function openSharded(indexFile: string): Promise<OpenedWeights> {
  const weightMap = parseShardIndex(await fs.readFile(indexFile, 'utf8'), indexFile);
  const dir = path.dirname(indexFile);
  const shardNames = [...new Set(weightMap.values())];
  const shards = new Map<string, { reader: TensorReader; metadata: Readonly<Record<string, string>> }>();
  for (const name of shardNames) shards.set(name, await openFile(path.join(dir, name)));
  const owners = new Map<string, TensorReader>();
  for (const [key, name] of weightMap) {
    const { reader } = shards.get(name)!;
    if (!reader.has(key)) throw new FileFormatError(indexFile, `weight_map puts '${key}' in ${name}, which does not hold it`);
    owners.set(key, reader);
  }
  for (const [name, { reader }] of shards) {
    for (const key of reader.keys()) {
      if (weightMap.get(key) !== name) throw new FileFormatError(path.join(dir, name), `holds '${key}', which the index does not assign to it`);
    }
  }
  const layouts = new Set([...shards.values()].map((s) => layoutOfMetadata(s.metadata)));
  if (layouts.size > 1) throw new FileFormatError(indexFile, 'shards disagree on the weight layout (tfjs and HF mixed)');
  const first = shards.get(shardNames[0]!)!;
  return {
    reader: new Weights(indexFile, owners),
    layout: [...layouts][0]!,
    format: shardNames[0]!.endsWith('.safetensors') ? 'sharded-safetensors' : 'sharded-pytorch',
    files: [indexFile, ...shardNames.map((n) => path.join(dir, n))],
    metadata: first.metadata,
  };
}

export type PretrainedFileSet = 'model' | 'processor' | 'all';

export interface PretrainedSourceOptions extends HubOptions {
  /** Which files a hub download fetches: config and weights (`model`), processor files, or both. */
  files?: PretrainedFileSet;
}

/** Splits `org/name@revision`. */
function parseHubSource(source: string, revision: string | undefined): { repoId: string; revision: string | undefined } {
  const at = source.indexOf('@');
  if (at < 0) return { repoId: source, revision };
  const pinned = source.slice(at + 1);
  if (revision !== undefined && revision !== pinned) {
    throw new InvalidArgumentError(`source '${source}' pins revision '${pinned}' but options.revision is '${revision}'`);
  }
  return { repoId: source.slice(0, at), revision: pinned };
}

/**
 * A local folder holding `source`'s files: the folder itself, or the hub snapshot folder after fetching the files
 * `options.files` asks for (missing optional files are fine; a missing config or weights file is not).
 */
export async function resolvePretrainedFolder(source: string, options: PretrainedSourceOptions = {}): Promise<string> {
  if (typeof source !== 'string' || source === '') throw new InvalidArgumentError(`source: expected a folder or a hub id, got ${JSON.stringify(source)}`);
  if (await isDirectory(source)) return source;
  if (await exists(source)) throw new InvalidArgumentError(`source: expected a model folder or a hub id, got the file ${source}`);
  const { repoId, revision } = parseHubSource(source, options.revision);
  if (!isHubRepoId(repoId) || source.startsWith('.') || path.isAbsolute(source)) throw new FileNotFoundError(source, 'model folder');
  const hub = { ...options, revision };
  const set = options.files ?? 'model';
  let folder: string | undefined;
  const note = (file: string | undefined): void => {
    if (file !== undefined) folder ??= path.dirname(file);
  };
  if (set !== 'processor') {
    const config = await hubFile(repoId, CONFIG_FILE, hub);
    if (config === undefined) throw new FileNotFoundError(`${repoId}/${CONFIG_FILE}`, 'model config on the hub');
    folder = path.dirname(config);
    note(await fetchHubWeights(repoId, hub));
  }
  if (set !== 'model') {
    for (const name of [PREPROCESSOR_FILE, ...TOKENIZER_FILES, CONFIG_FILE]) note(await hubFile(repoId, name, hub));
  }
  if (folder === undefined) throw new FileNotFoundError(`${repoId} (no processor or config files)`, 'hub repository files');
  return folder;
}

async function fetchHubWeights(repoId: string, hub: HubOptions): Promise<string> {
  for (const name of WEIGHT_FILES) {
    const file = await hubFile(repoId, name, hub);
    if (file === undefined) continue;
    if (name.endsWith('.index.json')) {
      const shards = new Set(parseShardIndex(await fs.readFile(file, 'utf8'), file).values());
      for (const shard of shards) {
        if ((await hubFile(repoId, shard, hub)) === undefined) throw new FileNotFoundError(`${repoId}/${shard}`, `shard listed in ${name}`);
      }
    }
    return file;
  }
  throw new FileNotFoundError(`${repoId} (none of ${WEIGHT_FILES.join(', ')})`, 'model weights on the hub');
}

const HUB_OPTION_TYPES: Record<string, string> = { revision: 'string', cacheDir: 'string', endpoint: 'string', offline: 'boolean', token: 'string', progress: 'boolean' };

function hubOptionsOf(options: PretrainedOptions): HubOptions {
  const out: Record<string, unknown> = {};
  for (const [key, type] of Object.entries(HUB_OPTION_TYPES)) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== type) throw new InvalidArgumentError(`options.${key}: expected a ${type}, got ${JSON.stringify(value)}`);
    out[key] = value;
  }
  return out as HubOptions;
}

/** Config and weights of a folder, weights file or hub id, for `fromPretrained`. */
export async function readPretrained(source: string, options: PretrainedOptions = {}): Promise<PretrainedFiles> {
  const hub = hubOptionsOf(options);
  const isFile = typeof source === 'string' && (await exists(source)) && !(await isDirectory(source));
  const folder = isFile ? path.dirname(source) : await resolvePretrainedFolder(source, { ...hub, files: 'model' });
  const configPath = path.join(folder, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(configPath, 'utf8');
  } catch {
    throw new FileNotFoundError(configPath, 'model config');
  }
  let config: CLIPSegConfig;
  try {
    config = CLIPSegConfig.fromJSONString(text, configPath);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${configPath}: ${(err as Error).message}`, { cause: err });
  }
  const weights = await openWeights(isFile ? source : folder);
  return { config, weights: weights.reader, layout: weights.layout, source };
}

registerPretrainedLoader((source, options) => readPretrained(source, options));
CLIPSegProcessor.registerLoader(async (source) => loadProcessorFrom(source === undefined ? undefined : await resolvePretrainedFolder(source, { files: 'processor' })));
