/**
 * The per-sample training pipeline of CLIPSeg on PhraseCut (clipseg `datasets/phrasecut.py`; training recipe §1.2-1.4),
 * with the paper's defaults, each configurable:
 *   random square crop of side min(H, W), the first of 50 tries where the target covers > 5% of the full image area
 *   (else the try with most target pixels) -> resize to 352 (image bilinear with align_corners, mask nearest, as torch
 *   `F.interpolate`) -> /255 and ImageNet normalisation -> negative with probability 0.2 (another unique phrase,
 *   empty mask; or, with `negatives: 'hard'`, one that shares an attribute and names nothing in the picture) -> one
 *   of 9 prompt templates -> a visual support (another sample with the same phrase, same crop and resize, then
 *   crop/blur/darken) -> a text weight ~ U(0, 0.5), or 1 without a valid support.
 *
 * Everything random comes from `Rng.derive(seed, 'sample', position)`, so sample `position` of a run is the same
 * whatever was loaded before it. Pure typed-array code: no tensors are created.
 */
import { entryIn, listIn } from '../collections.js';
import { DatasetError, InvalidArgumentError } from '../errors.js';
import type { RawImage } from '../processor/image.js';
import { type VisualPromptOptions, makeVisualPromptNormalized } from '../processor/visual_prompt.js';
import type { RasterRule } from './rasterize.js';
import { Rng } from './rng.js';
import { PROMPT_TEMPLATES, randomPrompt } from './templates.js';

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** What the pipeline needs from a dataset; `PhraseCutDataset` provides it. */
export interface SampleSource {
  /** `imageId`, `name` and `attributes` (PhraseCut's `phrase_structure`) are needed by hard negatives only. */
  readonly tasks: ReadonlyArray<{
    readonly taskId: string;
    readonly phrase: string;
    readonly imageId?: number;
    readonly name?: string;
    readonly attributes?: readonly string[];
  }>;
  phraseGroups(): ReadonlyMap<string, readonly number[]>;
  loadSample(index: number, rule?: RasterRule): Promise<{ image: RawImage; mask: Uint8Array } | null>;
}

export interface PipelineOptions {
  /** Output side (352). */
  size: number;
  /** Random square crop of side min(H, W) (true); false squashes the whole image. */
  crop: boolean;
  cropTries: number;
  /** A crop is accepted when the target covers more than this fraction of the full image area (0.05). */
  minCoverage: number;
  negativeProbability: number;
  /**
   * 'random' (the paper's): a negative's phrase is any other phrase of the dataset. 'hard': a phrase that shares an
   * attribute with the task's and whose name occurs in none of the picture's phrases and names ("red star" for "red
   * circle" in a picture without stars), so that the attribute alone does not find the target; a task without such a
   * phrase falls back to 'random'. Its empty label assumes that what no phrase of the picture names is absent from it.
   */
  negatives: 'random' | 'hard';
  /** 'mixed': one of the 9 templates per sample (PC+); 'none': the raw phrase (PC). */
  templates: 'mixed' | 'none';
  /** Build a visual support per sample (PC+). */
  withVisual: boolean;
  /** Text weight range [low, high) for text/visual interpolation when a support exists. */
  textWeightRange: readonly [number, number];
  rule: RasterRule;
  /** 'shuffle': a new seeded permutation each epoch; 'sequential': dataset order (CLIPSeg's loader). */
  order: 'shuffle' | 'sequential';
  visualPrompt: VisualPromptOptions;
}

export const PAPER_PIPELINE: Readonly<PipelineOptions> = Object.freeze({
  size: 352,
  crop: true,
  cropTries: 50,
  minCoverage: 0.05,
  negativeProbability: 0.2,
  negatives: 'random',
  templates: 'mixed',
  withVisual: true,
  textWeightRange: [0, 0.5] as const,
  rule: 'clipseg',
  order: 'shuffle',
  visualPrompt: {},
});

export interface TrainingSample {
  /** Normalised image [3, size, size]. */
  pixelValues: Float32Array;
  /** Target mask [size, size] of 0/1. */
  label: Float32Array;
  phrase: string;
  prompt: string;
  /** Visual prompt [3, size, size], when the phrase has another sample to show. */
  supportPixelValues?: Float32Array;
  /** Weight of the text embedding in the conditional: w·text + (1 − w)·visual. */
  textWeight: number;
  taskId: string;
  index: number;
  position: number;
  negative: boolean;
}

export interface TrainingBatch {
  batchSize: number;
  size: number;
  /** [B, 3, size, size] */
  pixelValues: Float32Array;
  /** [B, size, size] */
  labels: Float32Array;
  /** [B, 3, size, size]; zeros where `supportValid` is false. */
  supportPixelValues: Float32Array;
  supportValid: boolean[];
  textWeights: Float32Array;
  prompts: string[];
  phrases: string[];
  taskIds: string[];
}

const f32 = Math.fround;

/** torch `F.interpolate(mode='bilinear', align_corners=True)` on a float32 CHW image. */
export function resizeBilinearAlignCorners(src: Float32Array, channels: number, h: number, w: number, outH: number, outW: number): Float32Array {
  const axis = (inSize: number, outSize: number) => {
    const scale = outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
    const i0 = new Int32Array(outSize);
    const step = new Int32Array(outSize);
    const l1 = new Float32Array(outSize);
    const l0 = new Float32Array(outSize);
    for (let d = 0; d < outSize; d++) {
      const real = f32(scale * d);
      const i = Math.floor(real);
      i0[d] = i;
      step[d] = i < inSize - 1 ? 1 : 0;
      l1[d] = f32(real - i);
      l0[d] = f32(1 - l1[d]);
    }
    return { i0, step, l0, l1 };
  };
  const ys = axis(h, outH);
  const xs = axis(w, outW);
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    const base = c * h * w;
    for (let y = 0; y < outH; y++) {
      const r0 = base + ys.i0[y] * w;
      const r1 = r0 + ys.step[y] * w;
      const h0 = ys.l0[y];
      const h1 = ys.l1[y];
      const o = (c * outH + y) * outW;
      for (let x = 0; x < outW; x++) {
        const c0 = xs.i0[x];
        const c1 = c0 + xs.step[x];
        const w0 = xs.l0[x];
        const w1 = xs.l1[x];
        out[o + x] = f32(
          f32(h0 * f32(f32(w0 * src[r0 + c0]) + f32(w1 * src[r0 + c1]))) + f32(h1 * f32(f32(w0 * src[r1 + c0]) + f32(w1 * src[r1 + c1]))),
        );
      }
    }
  }
  return out;
}

/** Source index per output index of torch's default ('nearest') interpolation, computed in float32 as torch does. */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const scale = f32(inSize / outSize);
  return Int32Array.from({ length: outSize }, (_, d) => Math.min(Math.floor(f32(d * scale)), inSize - 1));
}

/** Picks the crop as CLIPSeg's `find_crop(seg, (side, side), iterations, min_frac)` does. */
export function findCrop(
  mask: Uint8Array,
  height: number,
  width: number,
  side: number,
  rng: Rng,
  tries: number,
  minCoverage: number,
): { y: number; x: number; accepted: boolean } {
  // Summed-area table: target pixels in any crop in O(1).
  const stride = width + 1;
  const sat = new Float64Array((height + 1) * stride);
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      row += mask[y * width + x] !== 0 ? 1 : 0;
      sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
    }
  }
  const inside = (y: number, x: number): number =>
    sat[(y + side) * stride + x + side] - sat[y * stride + x + side] - sat[(y + side) * stride + x] + sat[y * stride + x];
  const minSum = height * width * minCoverage;
  let best = { sum: -Infinity, y: 0, x: 0 };
  for (let t = 0; t < tries; t++) {
    const y = rng.int(height - side + 1);
    const x = rng.int(width - side + 1);
    const sum = inside(y, x);
    if (sum > minSum) return { y, x, accepted: true };
    if (sum > best.sum) best = { sum, y, x };
  }
  return { y: best.y, x: best.x, accepted: false };
}

interface HardNegatives {
  /** The distinct phrases carrying each attribute, with their names, in dataset order. */
  byAttribute: Map<string, Array<{ phrase: string; name: string }>>;
  /** Each picture's phrases and names, space-padded and joined, for whole-word lookups of a name. */
  pictureText: Map<number, string>;
}

function indexHardNegatives(tasks: SampleSource['tasks']): HardNegatives {
  const byAttribute = new Map<string, Array<{ phrase: string; name: string }>>();
  const seen = new Map<string, Set<string>>();
  const pictures = new Map<number, string[]>();
  for (const t of tasks) {
    // The name too: PhraseCut names "man" in the phrase "two men", and a hard "white man" must not go to that picture.
    if (t.imageId !== undefined) listIn(pictures, t.imageId).push(t.phrase, ...(t.name === undefined ? [] : [t.name]));
    if (t.name === undefined) continue;
    for (const a of t.attributes ?? []) {
      const phrases = entryIn(seen, a, () => new Set<string>());
      if (phrases.has(t.phrase)) continue;
      phrases.add(t.phrase);
      listIn(byAttribute, a).push({ phrase: t.phrase, name: t.name });
    }
  }
  const pictureText = new Map([...pictures].map(([id, phrases]) => [id, ` ${phrases.join(' | ')} `]));
  return { byAttribute, pictureText };
}

/** The hard-negative phrases of `task`, in dataset order; empty without a picture id or attributes. */
function hardNegatives(index: HardNegatives, task: SampleSource['tasks'][number]): string[] {
  const text = task.imageId === undefined ? undefined : index.pictureText.get(task.imageId);
  if (text === undefined) return [];
  const out = new Set<string>();
  for (const a of task.attributes ?? []) {
    for (const c of index.byAttribute.get(a) ?? []) {
      if (!text.includes(` ${c.name} `)) out.add(c.phrase);
    }
  }
  return [...out];
}

function validate(options: PipelineOptions): PipelineOptions {
  const { size, cropTries, minCoverage, negativeProbability, textWeightRange: [lo, hi] } = options;
  if (!Number.isSafeInteger(size) || size < 1) throw new InvalidArgumentError(`size: expected a positive integer, got ${size}`);
  if (!Number.isSafeInteger(cropTries) || cropTries < 1) throw new InvalidArgumentError(`cropTries: expected a positive integer, got ${cropTries}`);
  if (!(minCoverage >= 0 && minCoverage <= 1)) throw new InvalidArgumentError(`minCoverage: expected a fraction in [0, 1], got ${minCoverage}`);
  if (!(negativeProbability >= 0 && negativeProbability <= 1)) {
    throw new InvalidArgumentError(`negativeProbability: expected a probability in [0, 1], got ${negativeProbability}`);
  }
  if (!(lo >= 0 && hi <= 1 && lo <= hi)) throw new InvalidArgumentError(`textWeightRange: expected 0 <= low <= high <= 1, got [${lo}, ${hi}]`);
  if (options.negatives !== 'random' && options.negatives !== 'hard') throw new InvalidArgumentError(`negatives: expected 'random' or 'hard', got ${String(options.negatives)}`);
  if (options.templates !== 'mixed' && options.templates !== 'none') throw new InvalidArgumentError(`templates: expected 'mixed' or 'none', got ${String(options.templates)}`);
  if (options.order !== 'shuffle' && options.order !== 'sequential') throw new InvalidArgumentError(`order: expected 'shuffle' or 'sequential', got ${String(options.order)}`);
  return options;
}

export interface PreparedSample {
  /** Normalised [3, size, size]. */
  pixelValues: Float32Array;
  /** 0/1 [size, size]. */
  label: Uint8Array;
}

/**
 * Crops (a square of `crop.side` at `crop.y, crop.x`, or the whole image when `crop` is undefined, i.e. squashed),
 * resizes to `size` (image bilinear with align_corners, mask nearest) and normalises with ImageNet statistics,
 * as CLIPSeg's `load_sample` does.
 */
export function prepareSample(image: RawImage, mask: Uint8Array, size: number, crop?: { y: number; x: number; side: number }): PreparedSample {
  const { width: w, height: h } = image;
  if (image.channels !== 3 || mask.length !== w * h) {
    throw new InvalidArgumentError(`prepareSample: expected an RGB image and a ${w}x${h} mask, got ${image.channels} channels and ${mask.length} mask values`);
  }
  const y0 = crop?.y ?? 0;
  const x0 = crop?.x ?? 0;
  const ch = crop?.side ?? h;
  const cw = crop?.side ?? w;
  // [H, W, 3] uint8 crop -> [3, ch, cw] float32, as torch permutes before interpolating.
  const chw = new Float32Array(3 * ch * cw);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const s = 3 * ((y0 + y) * w + x0 + x);
      for (let c = 0; c < 3; c++) chw[(c * ch + y) * cw + x] = image.data[s + c];
    }
  }
  const pixelValues = resizeBilinearAlignCorners(chw, 3, ch, cw, size, size);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const mean = f32(IMAGENET_MEAN[c]);
    const std = f32(IMAGENET_STD[c]);
    for (let i = c * plane; i < (c + 1) * plane; i++) pixelValues[i] = f32(f32(f32(pixelValues[i] / 255) - mean) / std);
  }
  const ys = nearestIndices(ch, size);
  const xs = nearestIndices(cw, size);
  const label = new Uint8Array(plane);
  for (let y = 0; y < size; y++) {
    const row = (y0 + ys[y]) * w + x0;
    for (let x = 0; x < size; x++) label[y * size + x] = mask[row + xs[x]] !== 0 ? 1 : 0;
  }
  return { pixelValues, label };
}

export class SamplePipeline {
  readonly options: Readonly<PipelineOptions>;
  readonly seed: number;
  private readonly source: SampleSource;
  private readonly phrases: readonly string[];
  private readonly hard: HardNegatives | undefined;
  private epochOrder: { epoch: number; order: Uint32Array } | undefined;

  constructor(source: SampleSource, seed: number, options: Partial<PipelineOptions> = {}) {
    if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`seed: expected an integer, got ${String(seed)}`);
    if (source.tasks.length === 0) throw new DatasetError('the training set has no usable task');
    this.options = validate({ ...PAPER_PIPELINE, ...options });
    this.seed = seed;
    this.source = source;
    this.phrases = [...source.phraseGroups().keys()];
    this.hard = this.options.negatives === 'hard' ? indexHardNegatives(source.tasks) : undefined;
  }

  get length(): number {
    return this.source.tasks.length;
  }

  /** The task index that position `position` of the run visits. */
  indexAt(position: number): number {
    if (!Number.isSafeInteger(position) || position < 0) throw new InvalidArgumentError(`position: expected a non-negative integer, got ${position}`);
    const n = this.length;
    if (this.options.order === 'sequential') return position % n;
    const epoch = Math.floor(position / n);
    if (this.epochOrder?.epoch !== epoch) this.epochOrder = { epoch, order: Rng.derive(this.seed, 'epoch', epoch).permutation(n) };
    return this.epochOrder.order[position % n];
  }

  /** Loads, crops, resizes and normalises one task; the label is the resized mask. */
  private async prepare(index: number, rng: Rng): Promise<PreparedSample | null> {
    const loaded = await this.source.loadSample(index, this.options.rule);
    if (loaded === null) return null;
    const { image, mask } = loaded;
    const side = Math.min(image.height, image.width);
    const crop = this.options.crop
      ? { ...findCrop(mask, image.height, image.width, side, rng, this.options.cropTries, this.options.minCoverage), side }
      : undefined;
    return prepareSample(image, mask, this.options.size, crop);
  }

  /** Sample `position` of the run. A task whose record or image fails is replaced by the next usable one. */
  async sample(position: number): Promise<TrainingSample> {
    const n = this.length;
    const first = this.indexAt(position);
    const rng = Rng.derive(this.seed, 'sample', position);
    let index = first;
    let prepared: PreparedSample | null = null;
    for (let k = 0; k < n && prepared === null; k++) {
      index = (first + k) % n;
      prepared = await this.prepare(index, rng);
    }
    if (prepared === null) throw new DatasetError('no task of the training set could be loaded (see the dataset summary for the reasons)');
    const task = this.source.tasks[index];
    let phrase = task.phrase;
    let negative = false;
    const label = new Float32Array(prepared.label.length);
    if (rng.next() < this.options.negativeProbability && this.phrases.length > 1) {
      const hard = this.hard === undefined ? [] : hardNegatives(this.hard, task);
      let other = phrase;
      if (hard.length > 0) other = rng.pick(hard);
      else while (other === phrase) other = rng.pick(this.phrases);
      phrase = other;
      negative = true;
    } else {
      for (let i = 0; i < label.length; i++) label[i] = prepared.label[i];
    }
    const prompt = this.options.templates === 'mixed' ? randomPrompt(rng, phrase, PROMPT_TEMPLATES) : phrase;
    let supportPixelValues: Float32Array | undefined;
    if (this.options.withVisual) {
      const group = this.source.phraseGroups().get(phrase) ?? [];
      if (group.length > 1) {
        const supportIndex = group[rng.int(group.length)];
        const support = await this.prepare(supportIndex, rng.fork('support'));
        if (support !== null) {
          const { size } = this.options;
          supportPixelValues = makeVisualPromptNormalized({ data: support.pixelValues, width: size, height: size }, support.label, {
            size,
            ...this.options.visualPrompt,
          });
        }
      }
    }
    const [lo, hi] = this.options.textWeightRange;
    const textWeight = supportPixelValues === undefined ? 1 : rng.uniform(lo, hi);
    return {
      pixelValues: prepared.pixelValues,
      label,
      phrase,
      prompt,
      ...(supportPixelValues === undefined ? {} : { supportPixelValues }),
      textWeight,
      taskId: task.taskId,
      index,
      position,
      negative,
    };
  }

  /** Batch `step` of size `batchSize`: positions step·B ... step·B + B − 1. */
  async batch(step: number, batchSize: number): Promise<TrainingBatch> {
    if (!Number.isSafeInteger(step) || step < 0) throw new InvalidArgumentError(`step: expected a non-negative integer, got ${step}`);
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`batchSize: expected a positive integer, got ${batchSize}`);
    const samples: TrainingSample[] = [];
    for (let k = 0; k < batchSize; k++) samples.push(await this.sample(step * batchSize + k));
    return collate(samples, this.options.size);
  }
}

/** Stacks samples into batch arrays. */
export function collate(samples: readonly TrainingSample[], size: number): TrainingBatch {
  const b = samples.length;
  const image = 3 * size * size;
  const plane = size * size;
  const batch: TrainingBatch = {
    batchSize: b,
    size,
    pixelValues: new Float32Array(b * image),
    labels: new Float32Array(b * plane),
    supportPixelValues: new Float32Array(b * image),
    supportValid: [],
    textWeights: new Float32Array(b),
    prompts: [],
    phrases: [],
    taskIds: [],
  };
  samples.forEach((s, k) => {
    if (s.pixelValues.length !== image || s.label.length !== plane) {
      throw new InvalidArgumentError(`samples[${k}]: expected pixel values of ${image} and a label of ${plane} values for size ${size}`);
    }
    batch.pixelValues.set(s.pixelValues, k * image);
    batch.labels.set(s.label, k * plane);
    if (s.supportPixelValues !== undefined) batch.supportPixelValues.set(s.supportPixelValues, k * image);
    batch.supportValid.push(s.supportPixelValues !== undefined);
    batch.textWeights[k] = s.textWeight;
    batch.prompts.push(s.prompt);
    batch.phrases.push(s.phrase);
    batch.taskIds.push(s.taskId);
  });
  return batch;
}
