/**
 * `clipseg preprocess IMAGE... --out FILE.safetensors`: the model's inputs exactly as it receives them
 * (`pixel_values` [B, 3, S, S] float32, and with `--prompt` the padded `input_ids` / `attention_mask` as int64, as
 * HF's processor returns them), ready for `clipseg inspect --inputs`.
 */
import * as path from 'node:path';
import type { Command } from 'commander';
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

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
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

export function registerPreprocess(program: Command): void {
  program
    .command('preprocess')
    .description('write pixel_values (and, with --prompt, input_ids / attention_mask) exactly as the model receives them')
    .argument('<image...>', 'image files; they form the batch in this order')
    .requiredOption('-o, --out <file>', 'the .safetensors file to write')
    .option('-m, --model <src>', "model folder or hub id whose preprocessor_config.json to apply (default: the demo model's)")
    .option('-p, --prompt <text>', 'also tokenize this text (repeat; padded to the longest, as HF padding=True)', collect)
    .option('--visual-prompt <image>', 'also write conditional_pixel_values for this image (repeat)', collect)
    .option('--json', 'print the written tensors as JSON')
    .action(async (images: string[], options: PreprocessOptions & { json?: boolean }) => {
      const summary = await runPreprocess(images, options);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        const lines = Object.entries(summary.tensors).map(([name, t]) => `${name} ${t.dtype} [${t.shape.join(', ')}]`);
        process.stdout.write(`${summary.out}: ${lines.join('; ')}\n`);
      }
    });
}
