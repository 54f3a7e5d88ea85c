/**
 * `ClipSeg`: segmentation in one call. Loads a model and its processor, runs the vision encoder once per image
 * whatever the number of prompts, reuses text embeddings through an LRU cache, and returns per prompt the
 * probabilities and the mask at the image's own size.
 *
 * ```ts
 * const seg = await ClipSeg.fromPretrained();            // the shipped demo model; or a folder / hub id
 * const [cat, sky] = await seg.segment('photo.jpg', ['a cat', 'the sky']);
 * seg.dispose();
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { type BackendName, currentBackend, selectBackend } from './backend.js';
import { InvalidArgumentError } from './errors.js';
import { NATIVE_BACKEND, rethrowWasmTrap, WASM_RESTART } from './failures.js';
import { count } from './text.js';
import { type ImageSource, loadImage } from './io/image_io.js';
import './io/pretrained.js';
import { CLIPSegForImageSegmentation, type SegmentationInputs } from './models/index.js';
import { disposeOutput } from './models/tidy.js';
import type { RawImage } from './processor/image.js';
import { DEFAULT_MASK_THRESHOLD, logitsToProbabilities } from './processor/postprocess.js';
import type { CLIPSegProcessor } from './processor/processor.js';
import {
  DEFAULT_TEXT_CACHE_SIZE,
  type PreparedVisualPrompt,
  type Prompt,
  PromptEncoder,
  type VisualPrompt,
  inputSide,
  kindOf,
} from './pipeline/prompts.js';
import { loadProcessorFrom, resolveModelFolder } from './pipeline/sources.js';

export type { EmbeddingPrompt, PreparedVisualPrompt, Prompt, VisualPrompt } from './pipeline/prompts.js';

export interface ClipSegOptions {
  /** tfjs backend to select before loading (default: `$CLIPSEG_BACKEND`, else auto). */
  backend?: BackendName;
  /**
   * Threads of the wasm backend (default: `$CLIPSEG_WASM_THREADS`, else 1, the single-threaded SIMD build); 2 to 8
   * start the threaded SIMD build. Chosen once per process, with the wasm backend's first use.
   */
  threads?: number;
  /** Text embeddings kept for reuse (default 256; 0 disables the cache). */
  cacheSize?: number;
  /** Hub revision when `source` is a hub id. */
  revision?: string;
}

export interface SegmentOptions {
  /** A pixel belongs to the mask when its probability is above this (default 0.3, the paper's). */
  threshold?: number;
  /** Also return the raw logits at the model's resolution. */
  returnLogits?: boolean;
}

/** One prompt's result on one image. */
export interface Segmentation {
  /** The text, or the prompt's label for visual prompts and embeddings. */
  prompt: string;
  /** Probabilities at the image's size, row-major (width × height values). */
  probabilities: Float32Array;
  /** 1 where the probability is above the threshold, else 0; row-major like `probabilities`. */
  mask: Uint8Array;
  width: number;
  height: number;
  maxProbability: number;
  /** Foreground pixels in `mask`. */
  area: number;
  /** Raw logits at the model's resolution (`logitsSize`²), when `returnLogits` is set. */
  logits?: Float32Array;
  logitsSize?: number;
}

export interface InspectOptions {
  /** Glob patterns over HF module names, e.g. `clip.vision_model.encoder.layers.*` or `decoder.layers.*:input`. */
  capture: readonly string[];
}

/** Tensors of one inspected forward; the caller owns (and disposes) all of them. */
export interface InspectResult {
  captures: Record<string, tf.Tensor>;
  /** [prompts, S, S] */
  logits: tf.Tensor3D;
  /** [1, 3, S, S], the image as the model saw it */
  pixelValues: tf.Tensor4D;
  /** [prompts, projection_dim] */
  conditionalEmbeddings: tf.Tensor2D;
}

/**
 * Prompts decoded together over one image's vision activations. The decoder's working set grows with the prompts of
 * a pass (at 352 px, rd64-refined: about 10 MB each, measured), so groups bound the memory of long prompt lists; the
 * vision pass is still shared by all of them.
 */
const PROMPTS_PER_DECODER_PASS = 8;

function checkThreshold(value: unknown): number {
  if (value === undefined) return DEFAULT_MASK_THRESHOLD;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(`threshold: expected a number in [0, 1], got ${String(value)}`);
  }
  return value;
}

export class ClipSeg {
  readonly model: CLIPSegForImageSegmentation;
  readonly processor: CLIPSegProcessor;
  private readonly prompts: PromptEncoder;
  private readonly side: number;
  private disposed = false;

  constructor(model: CLIPSegForImageSegmentation, processor: CLIPSegProcessor, options: Pick<ClipSegOptions, 'cacheSize'> = {}) {
    this.model = model;
    this.processor = processor;
    this.prompts = new PromptEncoder(model, processor, options.cacheSize ?? DEFAULT_TEXT_CACHE_SIZE);
    this.side = inputSide(processor);
  }

  /**
   * Loads a model folder or hub id (default: the demo model shipped in `assets/demo-model/`) with its
   * processor, after selecting the backend.
   */
  static async fromPretrained(source?: string, options: ClipSegOptions = {}): Promise<ClipSeg> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options: expected an object');
    await selectBackend(options.backend, options.threads === undefined ? {} : { threads: options.threads });
    const folder = await resolveModelFolder(source, { revision: options.revision });
    const [model, processor] = await Promise.all([CLIPSegForImageSegmentation.fromPretrained(folder), loadProcessorFrom(folder)]);
    try {
      return new ClipSeg(model, processor, { cacheSize: options.cacheSize });
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** The tfjs backend the model runs on. */
  get backend(): string {
    return currentBackend();
  }

  /** Side of the square the model sees and of its logits. */
  get inputSize(): number {
    return this.side;
  }

  /** Text-encoder passes and cache counters, for monitoring. */
  get cacheStats(): { textEncoderPasses: number; cached: number; hits: number; misses: number } {
    return this.prompts.stats;
  }

  /**
   * Segments `image` (or each image of an array) with every prompt. Returns one result per prompt, or per image
   * an array of them when `image` is an array.
   */
  segment(image: ImageSource, prompts: Prompt | readonly Prompt[], options?: SegmentOptions): Promise<Segmentation[]>;
  segment(images: readonly ImageSource[], prompts: Prompt | readonly Prompt[], options?: SegmentOptions): Promise<Segmentation[][]>;
  async segment(
    images: ImageSource | readonly ImageSource[],
    prompts: Prompt | readonly Prompt[],
    options: SegmentOptions = {},
  ): Promise<Segmentation[] | Segmentation[][]> {
    this.checkAlive();
    const threshold = checkThreshold(options?.threshold);
    const list = PromptEncoder.normalize(prompts);
    const many = Array.isArray(images);
    const sources = many ? (images as readonly ImageSource[]) : [images as ImageSource];
    if (sources.length === 0) throw new InvalidArgumentError('images: expected at least one image, got an empty array');
    const labels = list.map((p, i) => PromptEncoder.label(p, i));
    const results: Segmentation[][] = [];
    let stage = `encoding ${count(list.length, 'prompt')}`;
    try {
      const embeddings = await this.prompts.encode(list);
      for (const [i, source] of sources.entries()) {
        stage = `image ${i + 1} of ${sources.length} (${count(list.length, 'prompt')})`;
        results.push(await this.segmentOne(await loadImage(source), embeddings, labels, threshold, options.returnLogits === true));
      }
    } catch (err) {
      rethrowWasmTrap(err, (trap) => `segmentation stopped at ${stage}: ${trap} at ${this.side}x${this.side}; use ${NATIVE_BACKEND}, ${WASM_RESTART}`);
    }
    return many ? results : results[0]!;
  }

  /** Conditional embeddings [projection_dim] of prompts, as the decoder receives them (text ones cached). */
  async embed(prompts: Prompt | readonly Prompt[]): Promise<Float32Array[]> {
    this.checkAlive();
    // Copies: the cache keeps its own rows, whatever the caller does with these.
    return (await this.prompts.encode(PromptEncoder.normalize(prompts))).map((row) => row.slice());
  }

  /**
   * One forward with activation capture: every module whose HF name matches a pattern reports its output (and,
   * with `:input` / `:attn_weights` keys, its input and attention probabilities), as a PyTorch forward hook
   * on that module sees them. The image is shared by all prompts, so image-side captures have batch 1.
   */
  async inspect(image: ImageSource, prompts: Prompt | readonly Prompt[], options: InspectOptions): Promise<InspectResult> {
    this.checkAlive();
    if (options === null || typeof options !== 'object' || !Array.isArray(options.capture)) {
      throw new InvalidArgumentError('options.capture: expected an array of glob patterns');
    }
    const list = PromptEncoder.normalize(prompts);
    const raw = await loadImage(image);
    const promptInputs = await this.promptInputs(list);
    const pixelValues = this.processor.imageProcessor.preprocessTensor([raw]);
    try {
      const out = this.model.forward({ pixelValues, ...promptInputs }, { capture: options.capture, computePooled: true });
      // Clones share the data; disposing the whole output then frees exactly what the caller does not get.
      const captures = Object.fromEntries(Object.entries(out.captures ?? {}).map(([k, t]) => [k, t.clone()]));
      const result = { captures, logits: out.logits.clone(), pixelValues, conditionalEmbeddings: out.conditionalEmbeddings.clone() };
      disposeOutput(out);
      return result;
    } catch (err) {
      pixelValues.dispose();
      rethrowWasmTrap(
        err,
        (trap) =>
          `inspection stopped: ${trap} capturing ${options.capture.map((p) => `'${p}'`).join(', ')} for ${count(list.length, 'prompt')} at ${this.side}x${this.side}; ` +
          `capture fewer modules, pass fewer prompts per call or use ${NATIVE_BACKEND}, ${WASM_RESTART}`,
      );
    } finally {
      tf.dispose(Object.values(promptInputs).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
    }
  }

  /**
   * Model inputs for prompts of one kind, so that the towers they go through show up in captures: padded ids for
   * texts (as the HF processor pads), pixel values for visual prompts, else the embeddings.
   */
  private async promptInputs(list: readonly Prompt[]): Promise<Pick<SegmentationInputs, 'inputIds' | 'attentionMask' | 'conditionalPixelValues' | 'conditionalEmbeddings'>> {
    const kinds = new Set(list.map((p, i) => kindOf(p, i)));
    if (kinds.size === 1 && kinds.has('text')) {
      const maxLength = this.model.config.text_config.max_position_embeddings;
      const batch = this.processor.tokenizer.encodeBatch(list as string[], { padding: true, truncation: true, maxLength });
      return { inputIds: batch.input_ids, attentionMask: batch.attention_mask };
    }
    if ([...kinds].every((k) => k === 'visual' || k === 'prepared')) {
      const pixels = await Promise.all(list.map((p, i) => this.prompts.pixels(p as VisualPrompt | PreparedVisualPrompt, i)));
      const { height, width } = pixels[0]!;
      if (pixels.every((p) => p.height === height && p.width === width)) {
        const flat = new Float32Array(pixels.length * 3 * height * width);
        pixels.forEach((p, i) => flat.set(p.data, i * p.data.length));
        return { conditionalPixelValues: tf.tensor4d(flat, [pixels.length, 3, height, width]) };
      }
    }
    return { conditionalEmbeddings: this.stack(await this.prompts.encode(list)) };
  }

  /** Frees the model's weights and the cache; the instance cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.prompts.clear();
    this.model.dispose();
  }

  private checkAlive(): void {
    if (this.disposed) throw new InvalidArgumentError('this ClipSeg instance was disposed; load a new one');
  }

  private stack(rows: readonly Float32Array[]): tf.Tensor2D {
    const dim = this.model.config.projection_dim;
    const flat = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => flat.set(r, i * dim));
    return tf.tensor2d(flat, [rows.length, dim]);
  }

  private async segmentOne(
    image: RawImage,
    embeddings: readonly Float32Array[],
    labels: readonly string[],
    threshold: number,
    returnLogits: boolean,
  ): Promise<Segmentation[]> {
    // One vision pass; the decoder broadcasts its activations over each group of prompts.
    const activations = tf.tidy(() => this.model.visionActivations(this.processor.imageProcessor.preprocessTensor([image])));
    const count = embeddings.length;
    let size = 0;
    let values = new Float32Array(0);
    try {
      for (let start = 0; start < count; start += PROMPTS_PER_DECODER_PASS) {
        const group = embeddings.slice(start, start + PROMPTS_PER_DECODER_PASS);
        const logits = tf.tidy(() => this.model.decoder.forward(activations, this.stack(group)).logits);
        try {
          if (start === 0) {
            size = logits.shape[1];
            values = new Float32Array(count * size * size);
          }
          values.set((await logits.data()) as Float32Array, start * size * size);
        } finally {
          logits.dispose();
        }
      }
    } finally {
      tf.dispose(activations);
    }
    const maps = logitsToProbabilities(values, [count, size, size], { width: image.width, height: image.height });
    const t = Math.fround(threshold);
    return maps.map((map, i) => {
      const mask = new Uint8Array(map.data.length);
      let area = 0;
      let max = 0;
      for (let k = 0; k < mask.length; k++) {
        const p = map.data[k]!;
        if (p > max) max = p;
        if (p > t) {
          mask[k] = 1;
          area++;
        }
      }
      const result: Segmentation = {
        prompt: labels[i]!,
        probabilities: map.data,
        mask,
        width: map.width,
        height: map.height,
        maxProbability: max,
        area,
      };
      if (returnLogits) {
        result.logits = values.slice(i * size * size, (i + 1) * size * size);
        result.logitsSize = size;
      }
      return result;
    });
  }
}
