/**
 * `clipseg segment IMAGE... --prompt TEXT...`: for each image and prompt a binary mask PNG and a probability PNG,
 * and per image one overlay of all prompts with a legend. Inputs are all checked (files decoded, output folder
 * writable) before the model loads, so a bad argument leaves nothing behind; every file is written atomically.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ClipSeg, type Prompt, type Segmentation } from '../clipseg.js';
import { InvalidArgumentError } from '../errors.js';
import { loadImage, loadLegendFont, savePng } from '../io/image_io.js';
import type { ColormapName } from '../processor/colormap.js';
import type { RawImage } from '../processor/image.js';
import { type LegendPlacement, overlayMasks } from '../processor/overlay.js';
import { DEFAULT_MASK_THRESHOLD, binaryMask, probabilityImage } from '../processor/postprocess.js';
import type { PromptBox } from '../processor/visual_prompt.js';
import { countProgress } from '../pipeline/count_progress.js';
import { DEFAULT_OUT_DIR } from './commands/segment.js';
import { checkWritableFolder } from './output_folder.js';

export interface SegmentCommandOptions {
  prompt?: string[];
  visualPrompt?: string[];
  visualMask?: string[];
  visualBox?: PromptBox[];
  model?: string;
  threshold?: number;
  out?: string;
  json?: boolean;
  colormap?: ColormapName;
  /** Legend of the overlay: 'right' (default, a strip beside the image) or 'over' (a box on its top-left corner). */
  legend?: LegendPlacement;
  cacheSize?: number;
}

export interface PromptSummary {
  prompt: string;
  mask: string;
  probabilities: string;
  /** Foreground pixels, and their share of the image. */
  area: number;
  coverage: number;
  maxProbability: number;
}

export interface ImageSummary {
  image: string;
  width: number;
  height: number;
  overlay: string;
  seconds: number;
  prompts: PromptSummary[];
}

export interface SegmentSummary {
  model: string;
  backend: string;
  threshold: number;
  out: string;
  timings: { loadSeconds: number; segmentSeconds: number; totalSeconds: number };
  images: ImageSummary[];
}

/** A file-name fragment for a prompt: lowercase words joined by '-', at most 40 characters. */
export function slugify(text: string): string {
  const slug = text
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug.length > 0 ? slug : 'prompt';
}

/** Distinct names: a repeated name gets `-2`, `-3`, ... */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name}-${count}`;
  });
}

/** Visual prompts from the command line: images paired by order with a mask or a box, or used as they are. */
function visualPrompts(options: SegmentCommandOptions): Prompt[] {
  const images = options.visualPrompt ?? [];
  const masks = options.visualMask ?? [];
  const boxes = options.visualBox ?? [];
  if (masks.length > 0 && boxes.length > 0) throw new InvalidArgumentError('--visual-mask and --visual-box: give one kind of region, not both');
  const regions = masks.length > 0 ? masks : boxes;
  if (regions.length > 0 && regions.length !== images.length) {
    const flag = masks.length > 0 ? '--visual-mask' : '--visual-box';
    throw new InvalidArgumentError(`${flag}: expected one per --visual-prompt (${images.length}), got ${regions.length}`);
  }
  return images.map((image, i) => ({
    image,
    label: `visual: ${path.basename(image)}`,
    ...(masks.length > 0 ? { mask: masks[i]! } : {}),
    ...(boxes.length > 0 ? { box: boxes[i]! } : {}),
  }));
}


function seconds(since: number): number {
  return Math.round((performance.now() - since) / 10) / 100;
}

export async function runSegment(imagePaths: readonly string[], options: SegmentCommandOptions = {}): Promise<SegmentSummary> {
  const start = performance.now();
  const threshold = options.threshold ?? DEFAULT_MASK_THRESHOLD;
  if (!(threshold >= 0 && threshold <= 1)) throw new InvalidArgumentError(`--threshold: expected a number in [0, 1], got ${threshold}`);
  if (imagePaths.length === 0) throw new InvalidArgumentError('segment: expected at least one IMAGE');
  const prompts: Prompt[] = [...(options.prompt ?? []), ...visualPrompts(options)];
  if (prompts.length === 0) throw new InvalidArgumentError('segment: expected at least one --prompt or --visual-prompt');
  const colormap = options.colormap ?? 'grey';
  const legend = options.legend ?? 'right';
  if (legend !== 'right' && legend !== 'over') throw new InvalidArgumentError(`--legend: expected 'right' or 'over', got '${String(legend)}'`);
  const out = options.out ?? DEFAULT_OUT_DIR;

  const images: RawImage[] = [];
  for (const file of imagePaths) images.push(await loadImage(file));
  for (const p of prompts) {
    if (typeof p === 'object' && 'image' in p) {
      await loadImage(p.image);
      if (typeof p.mask === 'string') await loadImage(p.mask);
    }
  }
  await checkWritableFolder(out, '--out');

  const loadStart = performance.now();
  const seg = await ClipSeg.fromPretrained(options.model, options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize });
  const loadSeconds = seconds(loadStart);
  try {
    await fs.mkdir(out, { recursive: true });
  } catch (err) {
    seg.dispose();
    throw new InvalidArgumentError(`--out: cannot create the folder ${out} (${(err as Error).message})`);
  }
  const stems = uniqueNames(imagePaths.map((f) => path.parse(f).name));
  const summary: SegmentSummary = {
    model: options.model ?? 'demo model (assets/demo-model)',
    backend: seg.backend,
    threshold,
    out,
    timings: { loadSeconds, segmentSeconds: 0, totalSeconds: 0 },
    images: [],
  };
  const progress = countProgress('segment', images.length);
  const segmentStart = performance.now();
  try {
    for (const [i, image] of images.entries()) {
      const imageStart = performance.now();
      const results = await seg.segment(image, prompts, { threshold });
      summary.images.push(await writeImageOutputs(imagePaths[i]!, stems[i]!, image, results, { out, threshold, colormap, legend, imageStart }));
      progress.tick(path.basename(imagePaths[i]!));
    }
  } finally {
    progress.done();
    seg.dispose();
  }
  summary.timings.segmentSeconds = seconds(segmentStart);
  summary.timings.totalSeconds = seconds(start);
  return summary;
}

async function writeImageOutputs(
  file: string,
  stem: string,
  image: RawImage,
  results: readonly Segmentation[],
  options: { out: string; threshold: number; colormap: ColormapName; legend: LegendPlacement; imageStart: number },
): Promise<ImageSummary> {
  const slugs = uniqueNames(results.map((r) => slugify(r.prompt)));
  const prompts: PromptSummary[] = [];
  for (const [j, r] of results.entries()) {
    const map = { data: r.probabilities, width: r.width, height: r.height };
    const maskFile = path.join(options.out, `${stem}_${slugs[j]}_mask.png`);
    const probFile = path.join(options.out, `${stem}_${slugs[j]}_prob.png`);
    await savePng(maskFile, binaryMask(map, options.threshold));
    await savePng(probFile, probabilityImage(map, options.colormap));
    prompts.push({
      prompt: r.prompt,
      mask: maskFile,
      probabilities: probFile,
      area: r.area,
      coverage: r.area / (r.width * r.height),
      maxProbability: r.maxProbability,
    });
  }
  const overlay = overlayMasks(
    image,
    results.map((r) => ({ label: r.prompt, map: { data: r.probabilities, width: r.width, height: r.height } })),
    { threshold: options.threshold, font: await loadLegendFont(image.height), legend: options.legend },
  );
  const overlayFile = path.join(options.out, `${stem}_overlay.png`);
  await savePng(overlayFile, overlay);
  return { image: file, width: image.width, height: image.height, overlay: overlayFile, seconds: seconds(options.imageStart), prompts };
}

export function formatSegmentSummary(summary: SegmentSummary): string {
  const lines: string[] = [];
  for (const img of summary.images) {
    lines.push(`${img.image} (${img.width}x${img.height}, ${img.seconds.toFixed(2)} s) -> ${img.overlay}`);
    for (const p of img.prompts) {
      lines.push(`  ${JSON.stringify(p.prompt)}: ${(100 * p.coverage).toFixed(1)}% of the image, max p ${p.maxProbability.toFixed(3)} -> ${p.mask}`);
    }
  }
  lines.push(`model ${summary.model} on ${summary.backend}: loaded in ${summary.timings.loadSeconds.toFixed(2)} s, ${summary.images.length} image(s) in ${summary.timings.segmentSeconds.toFixed(2)} s`);
  return `${lines.join('\n')}\n`;
}
