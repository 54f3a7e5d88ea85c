/**
 * `convertCheckpoint`: any CLIPSeg weights this package can read -> a model folder in this package's layout:
 * `model.safetensors` pre-transposed for tfjs (metadata `format: clipseg-tfjs`, `layout: tfjs`, source, dtype),
 * `config.json`, `preprocessor_config.json` and the CLIP tokenizer files.
 *
 * Inputs: an HF folder or file (`model.safetensors`, sharded safetensors, `pytorch_model.bin`, also sharded), a
 * folder this converter wrote, or the paper's release (decoder weights with `--clip` OpenAI CLIP weights, or one
 * combined file). Keys, shapes and dtypes are checked against the model the config describes before anything is
 * written; every problem is listed in one `CheckpointKeyError`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CLIPSegConfig } from '../src/config/index.js';
import { CheckpointKeyError, ConfigError, formatShape, InvalidArgumentError, UnsupportedError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { CONFIG_FILE, WEIGHTS_FILE } from '../src/io/model_files.js';
import { openWeights, resolvePretrainedFolder, type TensorReader } from '../src/io/pretrained.js';
import { createProgress } from '../src/io/progress.js';
import { type DType, floatToHalf, type WriteTensor, writeSafetensors } from '../src/io/safetensors.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { convertLayout, hfShapeOf, layoutKindOf, SAFETENSORS_METADATA, tfjsToHf, type WeightLayout } from '../src/models/layout.js';
import { isBufferKey } from '../src/models/state_dict.js';
import { inferConfigJson, mergeConfigJson } from './infer_config.js';
import { looksLikeClipBackbone, looksOriginal, mapClipKey, mapDecoderKey, type OriginalMapping } from './original_keys.js';
import { type ProcessorFilesResult, writeProcessorFiles } from './processor_files.js';
import { exists, isDirectory } from '../src/io/fs_checks.js';

type Json = Record<string, unknown>;

export type OutputDType = 'float32' | 'float16';

export interface ConvertOptions {
  /** Precision of the written weights (default float32). */
  dtype?: OutputDType;
  /** OpenAI CLIP weights (`ViT-B-16.pt`) to pair with decoder-only weights of the paper's release. */
  clip?: string;
  /** config.json values that override the source's config or complete the inferred one. */
  config?: Json;
  /** Draw a progress bar (default: when stderr is a terminal). */
  progress?: boolean;
}

export interface ConvertSummary {
  source: string;
  out: string;
  /** `hf` for transformers keys (HF or tfjs layout), `original` for the paper's release. */
  input: 'hf' | 'original';
  dtype: OutputDType;
  keys: number;
  parameters: number;
  bytes: number;
  sha256: string;
  /** Source keys that are not weights of the model (position_ids buffers, the original's unused layers). */
  dropped: string[];
  processor: ProcessorFilesResult;
}

/** A tensor to be written, under its HF key, in the source's layout. */
interface PendingTensor {
  shape: number[];
  dtype: DType;
  origin: string;
  read: () => Float32Array;
}

interface SourceTensors {
  input: 'hf' | 'original';
  tensors: Map<string, PendingTensor>;
  layout: WeightLayout;
  dropped: string[];
  /** The folder whose config and processor files belong to these weights (HF inputs only). */
  folder?: string;
  sources: string[];
}

const FLOAT_DTYPES = new Set<DType>(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 20;

function pending(reader: TensorReader, key: string): PendingTensor {
  const { dtype, shape } = reader.info(key);
  return { shape, dtype, origin: `${reader.source}: ${key}`, read: () => reader.getFloat32(key) };
}

async function readSource(src: string, options: ConvertOptions): Promise<SourceTensors> {
  const opened = await openWeights(src);
  const keys = opened.reader.keys();
  const folder = (await isDirectory(src)) ? src : path.dirname(src);
  if (looksLikeClipBackbone(keys)) {
    throw new InvalidArgumentError(`${src} holds OpenAI CLIP weights only: pass the CLIPSeg decoder weights (e.g. rd64-uni.pth) as SRC and this file with --clip`);
  }
  if (!looksOriginal(keys)) {
    if (options.clip !== undefined) throw new InvalidArgumentError(`--clip applies to the paper's decoder-only weights, but ${src} already has transformers keys`);
    const tensors = new Map(keys.map((k) => [k, pending(opened.reader, k)]));
    return { input: 'hf', tensors, layout: opened.layout, dropped: [], folder, sources: opened.files };
  }
  const hasClip = keys.some((k) => k.startsWith('clip_model.'));
  if (!hasClip && options.clip === undefined) {
    throw new InvalidArgumentError(`${src} holds decoder weights of the paper's release only: pass OpenAI's CLIP ViT-B/16 weights with --clip ViT-B-16.pt`);
  }
  if (hasClip && options.clip !== undefined) {
    throw new InvalidArgumentError(`${src} already contains CLIP weights (clip_model.*); --clip would give a second copy`);
  }
  const result: SourceTensors = { input: 'original', tensors: new Map(), layout: 'hf', dropped: [], sources: [...opened.files] };
  const problems: string[] = [];
  mapOriginal(opened.reader, mapDecoderKey, result, problems);
  if (options.clip !== undefined) {
    const clip = await openWeights(options.clip);
    result.sources.push(...clip.files);
    mapOriginal(clip.reader, mapClipKey, result, problems);
  }
  if (problems.length > 0) throw keyError(problems);
  return result;
}

function mapOriginal(reader: TensorReader, map: (key: string) => OriginalMapping, into: SourceTensors, problems: string[]): void {
  for (const key of reader.keys()) {
    const mapping = map(key);
    const { shape } = reader.info(key);
    if (mapping.kind === 'drop') {
      into.dropped.push(key);
      continue;
    }
    if (mapping.kind === 'unsupported') {
      throw new UnsupportedError(`${reader.source}: '${key}' belongs to ${mapping.feature}, which transformers' CLIPSeg cannot express`);
    }
    if (mapping.kind === 'unknown') {
      problems.push(`unexpected key '${key}' ${formatShape(shape)} in ${reader.source}`);
      continue;
    }
    const target = mapping.rule.target(mapping.match);
    const add = (hfKey: string, tensor: PendingTensor): void => {
      const previous = into.tensors.get(hfKey);
      if (previous !== undefined) problems.push(`'${hfKey}' comes from both ${previous.origin} and ${tensor.origin}`);
      else into.tensors.set(hfKey, tensor);
    };
    const base = pending(reader, key);
    if (mapping.rule.transform === 'copy') {
      add(target as string, base);
    } else if (mapping.rule.transform === 'transpose') {
      const hfKey = target as string;
      if (shape.length !== 2 || layoutKindOf(hfKey) !== 'linear') {
        problems.push(`key '${key}': expected a 2-D projection, got ${formatShape(shape)}`);
        continue;
      }
      // OpenAI keeps these projections [in, out] (applied as x @ proj), which is the tfjs linear layout.
      add(hfKey, { ...base, shape: [shape[1]!, shape[0]!], read: () => tfjsToHf(hfKey, shape, base.read()).data });
    } else {
      const rows = shape[0] ?? 0;
      if (shape.length === 0 || rows % 3 !== 0) {
        problems.push(`key '${key}': an in_proj tensor needs a first dimension divisible by 3, got ${formatShape(shape)}`);
        continue;
      }
      const part = rows / 3;
      const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
      (target as string[]).forEach((hfKey, i) => {
        // Rows [0, d) are q, [d, 2d) k, [2d, 3d) v.
        add(hfKey, { ...base, shape: [part, ...shape.slice(1)], read: () => base.read().slice(i * part * rowSize, (i + 1) * part * rowSize) });
      });
    }
  }
}

function keyError(problems: string[]): CheckpointKeyError {
  const listed = problems.slice(0, MAX_LISTED).join('\n  ');
  const more = problems.length > MAX_LISTED ? `\n  ... and ${problems.length - MAX_LISTED} more` : '';
  return new CheckpointKeyError(`checkpoint does not match the model (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${listed}${more}`);
}

async function readConfigJson(folder: string | undefined): Promise<Json | undefined> {
  if (folder === undefined) return undefined;
  const file = path.join(folder, CONFIG_FILE);
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return CLIPSegConfig.fromJSONString(text, file).toJSON();
}

/** The config of the converted model: the source's config.json, else one inferred from the shapes; then the overrides. */
async function resolveConfig(source: SourceTensors, overrides: Json | undefined): Promise<CLIPSegConfig> {
  const own = source.input === 'hf' ? await readConfigJson(source.folder) : undefined;
  if (own !== undefined) return new CLIPSegConfig(mergeConfigJson(own, overrides));
  const hfShapes = new Map([...source.tensors].map(([k, t]) => [k, source.layout === 'hf' ? t.shape : hfShapeOf(k, t.shape)]));
  try {
    return new CLIPSegConfig(inferConfigJson(hfShapes, overrides));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source.sources[0]}: no config.json, and ${err.message}`, { cause: err });
    throw err;
  }
}

/** Every key, shape and dtype against the model `config` describes; returns the parameter keys in model order. */
function checkAgainstModel(config: CLIPSegConfig, source: SourceTensors): string[] {
  const model = new CLIPSegForImageSegmentation(config, { initialize: false });
  const params = model.parameters().map((p) => ({ key: p.key, shape: source.layout === 'hf' ? hfShapeOf(p.key, p.shape) : [...p.shape] }));
  model.dispose();
  const problems: string[] = [];
  const known = new Set(params.map((p) => p.key));
  for (const { key, shape } of params) {
    const t = source.tensors.get(key);
    if (t === undefined) problems.push(`missing key '${key}' ${formatShape(shape)}`);
    else if (!FLOAT_DTYPES.has(t.dtype)) problems.push(`key '${key}': expected a floating-point tensor, got ${t.dtype} (${t.origin})`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`key '${key}': the model expects ${formatShape(shape)} (${source.layout} layout), the checkpoint has ${formatShape(t.shape)} (${t.origin})`);
    }
  }
  for (const [key, t] of source.tensors) {
    if (known.has(key)) continue;
    if (isBufferKey(key)) source.dropped.push(key);
    else problems.push(`unexpected key '${key}' ${formatShape(t.shape)} (${t.origin})`);
  }
  if (problems.length > 0) throw keyError(problems);
  return params.map((p) => p.key);
}

function toHalf(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]!);
  return out;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Converts `src` into the model folder `out` (created if needed); see the module comment for the inputs. */
export async function convertCheckpoint(src: string, out: string, options: ConvertOptions = {}): Promise<ConvertSummary> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new InvalidArgumentError(`dtype: expected 'float32' or 'float16', got ${JSON.stringify(dtype)}`);
  if (options.config !== undefined && (typeof options.config !== 'object' || options.config === null || Array.isArray(options.config))) {
    throw new InvalidArgumentError('config: expected an object of config.json values');
  }
  // A hub id (`CIDAS/clipseg-rd64-refined[@rev]`) is fetched into the Hugging Face cache first; files and folders are used as they are.
  const local = (await exists(src)) ? src : await resolvePretrainedFolder(src, { files: 'all' });
  const source = await readSource(local, options);
  const config = await resolveConfig(source, options.config);
  const order = checkAgainstModel(config, source);

  const total = order.reduce((n, key) => n + source.tensors.get(key)!.shape.reduce((a, b) => a * b, 1), 0);
  const bar = createProgress('converting', total * 4, options.progress === undefined ? {} : { enabled: options.progress });
  const tensors: Record<string, WriteTensor> = {};
  try {
    for (const key of order) {
      const t = source.tensors.get(key)!;
      const laid = convertLayout(key, t.shape, t.read(), source.layout, 'tfjs');
      tensors[key] = dtype === 'float16' ? { dtype: 'F16', shape: laid.shape, data: toHalf(laid.data) } : { dtype: 'F32', shape: laid.shape, data: laid.data };
      bar.tick(laid.data.length * 4);
    }
  } finally {
    bar.done();
  }
  await fs.mkdir(out, { recursive: true });
  const weightsPath = path.join(out, WEIGHTS_FILE);
  const metadata = { ...SAFETENSORS_METADATA, source: source.sources.map((f) => path.basename(f)).join(' + '), dtype };
  await writeSafetensors(weightsPath, tensors, metadata);
  await writeFileAtomic(path.join(out, CONFIG_FILE), config.toJSONString());
  const processor = await writeProcessorFiles(out, source.input === 'hf' ? source.folder : undefined);
  return {
    source: src,
    out,
    input: source.input,
    dtype,
    keys: order.length,
    parameters: total,
    bytes: (await fs.stat(weightsPath)).size,
    sha256: await sha256File(weightsPath),
    dropped: source.dropped,
    processor,
  };
}
