/**
 * Activation capture for `clipseg inspect`: inputs from an image and prompts (`--image`, `--prompt`,
 * `--visual-prompt`) besides a safetensors file, `--capture PATTERN...` to keep what a PyTorch forward hook on each
 * matching module sees (saved under the module's name, `<name>:input`, `<name>:attn_weights`), and `--heatmaps DIR`
 * for attention and decoder heatmaps over the image. Runs of `inspect` without any of them keep the plain
 * tensor-file behaviour (`inspect.ts`).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, selectBackend } from '../backend.js';
import { ClipSeg, type InspectResult, type Prompt } from '../clipseg.js';
import { InvalidArgumentError } from '../errors.js';
import { loadImage, savePng } from '../io/image_io.js';
import { readSafetensors, type WriteTensor, writeSafetensors } from '../io/safetensors.js';
import { HEATMAP_CAPTURES, computeHeatmaps, renderHeatmap } from '../inspect/heatmaps.js';
import { CLIPSegForImageSegmentation, type SegmentationInputs } from '../models/clipseg_segmentation.js';
import { disposeOutput } from '../models/tidy.js';
import type { RawImage } from '../processor/image.js';
import { loadImageProcessorFrom, resolveModelFolder } from '../pipeline/sources.js';
import { readInputs } from './inspect.js';

export interface CaptureInspectOptions {
  model?: string;
  /** Tensor inputs (as `clipseg preprocess` writes them), or: */
  inputs?: string;
  /** an image with text or visual prompts. */
  image?: string;
  prompt?: string[];
  visualPrompt?: string[];
  capture?: string[];
  heatmaps?: string;
  out?: string;
  backend?: BackendName;
}

export interface CaptureSummary {
  out?: string;
  heatmaps: string[];
  tensors: { name: string; shape: number[] }[];
}

function toWrite(tensors: Record<string, tf.Tensor>): Record<string, WriteTensor> {
  const out: Record<string, WriteTensor> = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = { dtype: 'F32', shape: [...t.shape], data: t.dataSync() as Float32Array };
  return out;
}

/** The image a `[1, 3, S, S]` pixel_values tensor shows, with the normalisation undone (for heatmaps over it). */
function pixelValuesImage(pixels: tf.Tensor, mean: readonly number[], std: readonly number[]): RawImage {
  const [, , h, w] = pixels.shape as [number, number, number, number];
  const values = pixels.dataSync();
  const data = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) data[i * 3 + c] = Math.max(0, Math.min(255, Math.round((values[c * h * w + i]! * std[c]! + mean[c]!) * 255)));
  }
  return { data, width: w, height: h, channels: 3 };
}

/** Forward with capture on tensors from a safetensors file (names as in transformers). */
async function captureFromFile(options: CaptureInspectOptions, capture: string[]): Promise<{ result: InspectResult; image: RawImage }> {
  const inputs = readInputs(await readSafetensors(options.inputs!)) as unknown as Record<string, tf.Tensor>;
  try {
    const folder = await resolveModelFolder(options.model);
    const [model, imageProcessor] = await Promise.all([CLIPSegForImageSegmentation.fromPretrained(folder), loadImageProcessorFrom(folder)]);
    try {
      const out = model.forward(inputs as unknown as SegmentationInputs, { capture, computePooled: true });
      const result: InspectResult = {
        captures: Object.fromEntries(Object.entries(out.captures ?? {}).map(([k, t]) => [k, t.clone()])),
        logits: out.logits.clone(),
        pixelValues: inputs.pixelValues.slice(0, 1) as tf.Tensor4D,
        conditionalEmbeddings: out.conditionalEmbeddings.clone(),
      };
      disposeOutput(out);
      const { imageMean, imageStd } = imageProcessor.options;
      return { result, image: pixelValuesImage(result.pixelValues, imageMean, imageStd) };
    } finally {
      model.dispose();
    }
  } finally {
    tf.dispose(Object.values(inputs));
  }
}

/** Forward with capture on an image and prompts, through the model's own processor. */
async function captureFromImage(options: CaptureInspectOptions, capture: string[]): Promise<{ result: InspectResult; image: RawImage }> {
  const prompts: Prompt[] = [...(options.prompt ?? []), ...(options.visualPrompt ?? []).map((image) => ({ image }))];
  if (prompts.length === 0) throw new InvalidArgumentError('inspect: --image needs at least one --prompt or --visual-prompt');
  const seg = await ClipSeg.fromPretrained(options.model);
  try {
    const image = await loadImage(options.image!);
    return { result: await seg.inspect(image, prompts, { capture }), image };
  } finally {
    seg.dispose();
  }
}

export async function runCaptureInspect(options: CaptureInspectOptions): Promise<CaptureSummary> {
  if ((options.inputs === undefined) === (options.image === undefined)) {
    throw new InvalidArgumentError('inspect: give the inputs either as --inputs FILE.safetensors or as --image IMAGE with --prompt');
  }
  if (options.image === undefined && ((options.prompt ?? []).length > 0 || (options.visualPrompt ?? []).length > 0)) {
    throw new InvalidArgumentError('inspect: --prompt and --visual-prompt go with --image (a tensor file carries its own prompt)');
  }
  if (options.out === undefined && options.heatmaps === undefined) throw new InvalidArgumentError('inspect: --out FILE.safetensors (or --heatmaps DIR) is required');
  if (options.out !== undefined && path.extname(options.out) !== '.safetensors') throw new InvalidArgumentError(`--out: expected a .safetensors file name, got ${options.out}`);
  const user = options.capture ?? [];
  const capture = options.heatmaps === undefined ? user : [...user, ...HEATMAP_CAPTURES];
  if (options.heatmaps !== undefined) await fs.mkdir(options.heatmaps, { recursive: true });
  await selectBackend(options.backend);
  const { result, image } = options.image !== undefined ? await captureFromImage(options, capture) : await captureFromFile(options, capture);
  try {
    const summary: CaptureSummary = { heatmaps: [], tensors: [] };
    if (options.out !== undefined) {
      const tensors = toWrite({
        pixel_values: result.pixelValues,
        logits: result.logits,
        conditional_embeddings: result.conditionalEmbeddings,
        ...result.captures,
      });
      await writeSafetensors(options.out, tensors, { producer: 'clipseg inspect --capture' });
      summary.out = options.out;
      summary.tensors = Object.entries(tensors).map(([name, t]) => ({ name, shape: [...t.shape] }));
    }
    if (options.heatmaps !== undefined) {
      for (const map of computeHeatmaps(result.captures)) {
        const file = path.join(options.heatmaps, `${map.name}.png`);
        await savePng(file, renderHeatmap(map, image));
        summary.heatmaps.push(file);
      }
    }
    return summary;
  } finally {
    tf.dispose([result.logits, result.pixelValues, result.conditionalEmbeddings, ...Object.values(result.captures)]);
  }
}

export function formatCaptureSummary(summary: CaptureSummary): string {
  const lines = summary.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`);
  if (summary.out !== undefined) lines.push(`${summary.tensors.length} tensors -> ${summary.out}`);
  if (summary.heatmaps.length > 0) lines.push(`${summary.heatmaps.length} heatmaps -> ${path.dirname(summary.heatmaps[0]!)}`);
  return `${lines.join('\n')}\n`;
}
