/**
 * `clipseg preprocess IMAGE... --out FILE.safetensors`: the model's inputs exactly as it receives them
 * (`pixel_values` [B, 3, S, S] float32, and with `--prompt` the padded `input_ids` / `attention_mask` as int64, as
 * HF's processor returns them), ready for `clipseg inspect --inputs`.
 */
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { loadImage } from '../io/image_io.js';
import { type WriteTensor, writeSafetensors } from '../io/safetensors.js';
import { loadProcessorFrom, resolveModelFolder } from '../pipeline/sources.js';

export interface PreprocessOptions {
  out?: string;
  model?: string;
  prompt?: string[];
  visualPrompt?: string[];
}

export interface PreprocessSummary {
  out: string;
  tensors: Record<string, { dtype: string; shape: number[] }>;
}

function int64(rows: readonly (readonly number[])[]): WriteTensor {
  return { dtype: 'I64', shape: [rows.length, rows[0]!.length], data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)) };
}

export async function runPreprocess(imagePaths: readonly string[], options: PreprocessOptions = {}): Promise<PreprocessSummary> {
  if (imagePaths.length === 0) throw new InvalidArgumentError('preprocess: expected at least one IMAGE');
  const out = options.out;
  if (typeof out !== 'string' || out.length === 0) throw new InvalidArgumentError('--out: expected the path of the .safetensors file to write');
  if (path.extname(out) !== '.safetensors') throw new InvalidArgumentError(`--out: expected a .safetensors file name, got ${out}`);
  const prompts = options.prompt ?? [];
  const visual = options.visualPrompt ?? [];
  if (prompts.length > 0 && visual.length > 0) throw new InvalidArgumentError('--prompt and --visual-prompt: the model takes one kind of prompt per forward, give one');
  const images = await Promise.all(imagePaths.map((file) => loadImage(file)));
  const visualImages = await Promise.all(visual.map((file) => loadImage(file)));
  const processor = await loadProcessorFrom(await resolveModelFolder(options.model));
  const arrays = processor.callArrays({
    images,
    ...(prompts.length > 0 ? { text: prompts, padding: true } : {}),
    ...(visualImages.length > 0 ? { visualPrompt: visualImages } : {}),
  });
  const tensors: Record<string, WriteTensor> = {};
  if (arrays.pixelValues !== undefined) tensors.pixel_values = { dtype: 'F32', shape: arrays.pixelValues.shape, data: arrays.pixelValues.data };
  if (arrays.inputIds !== undefined) {
    tensors.input_ids = int64(arrays.inputIds);
    tensors.attention_mask = int64(arrays.attentionMask!);
  }
  if (arrays.conditionalPixelValues !== undefined) {
    tensors.conditional_pixel_values = { dtype: 'F32', shape: arrays.conditionalPixelValues.shape, data: arrays.conditionalPixelValues.data };
  }
  await writeSafetensors(out, tensors, { format: 'pt', producer: 'clipseg preprocess' });
  const described: PreprocessSummary['tensors'] = {};
  for (const [name, t] of Object.entries(tensors)) described[name] = { dtype: t.dtype, shape: [...t.shape] };
  return { out, tensors: described };
}
