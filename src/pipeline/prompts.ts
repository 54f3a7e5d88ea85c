/**
 * Prompts of the high-level API: text, visual prompts and ready embeddings, each turned into one conditional
 * embedding row. Text embeddings go through a bounded LRU cache keyed by token ids, so a repeated prompt never
 * reaches the text encoder again; calls in flight for the same text share one encoder pass.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { type ImageSource, loadImage } from '../io/image_io.js';
import type { CLIPSegForImageSegmentation } from '../models/index.js';
import type { RawImage } from '../processor/image.js';
import type { CLIPSegProcessor } from '../processor/processor.js';
import { makeVisualPrompt, type PromptBox } from '../processor/visual_prompt.js';
import { LruCache } from './lru.js';

/**
 * An image used as the prompt. With `mask` (an image, foreground where it is bright) or `box` ([x, y, width,
 * height] in pixels) it is prepared as CLIPSeg was trained (background darkened and blurred, cropped around the
 * region); without either it is used as it is, like HF's `visual_prompt=`.
 */
export interface VisualPrompt {
  image: ImageSource;
  mask?: ImageSource;
  box?: PromptBox;
  /** Name shown in results and legends (default `visual prompt <index>`). */
  label?: string;
}

/** A visual prompt already turned into normalised pixel values [3, S, S] (e.g. by `makeVisualPrompt`). */
export interface PreparedVisualPrompt {
  pixelValues: Float32Array | tf.Tensor;
  label?: string;
}

/** A ready conditional embedding [projection_dim], with an optional name. */
export interface EmbeddingPrompt {
  embedding: Float32Array | tf.Tensor;
  label?: string;
}

export type Prompt = string | VisualPrompt | PreparedVisualPrompt | EmbeddingPrompt | Float32Array | tf.Tensor;

export const DEFAULT_TEXT_CACHE_SIZE = 256;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof tf.Tensor) return `a tensor of shape [${value.shape.join(', ')}]`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `an object with keys {${Object.keys(value as object).join(', ')}}` : typeof value;
}

/** Turns prompts into conditional embeddings, caching those of texts. */
export class PromptEncoder {
  private readonly cache: LruCache<string, Float32Array>;
  private readonly pending = new Map<string, Promise<Float32Array>>();
  private textEncoderPasses = 0;

  constructor(
    private readonly model: CLIPSegForImageSegmentation,
    private readonly processor: CLIPSegProcessor,
    cacheSize = DEFAULT_TEXT_CACHE_SIZE,
  ) {
    this.cache = new LruCache(cacheSize);
  }

  /** Text-encoder passes so far and the cache's counters. */
  get stats(): { textEncoderPasses: number; cached: number; hits: number; misses: number } {
    return { textEncoderPasses: this.textEncoderPasses, cached: this.cache.size, ...this.cache.stats };
  }

  clear(): void {
    this.cache.clear();
  }

  /** Validates a prompt list: at least one prompt, each of a known kind. */
  static normalize(prompts: Prompt | readonly Prompt[]): Prompt[] {
    const list = Array.isArray(prompts) ? [...(prompts as readonly Prompt[])] : [prompts as Prompt];
    if (list.length === 0) throw new InvalidArgumentError('prompts: expected at least one prompt, got none');
    list.forEach((p, i) => kindOf(p, i));
    return list;
  }

  static label(prompt: Prompt, index: number): string {
    if (typeof prompt === 'string') return prompt;
    if (prompt instanceof Float32Array || prompt instanceof tf.Tensor) return `embedding ${index}`;
    if (typeof prompt.label === 'string' && prompt.label.length > 0) return prompt.label;
    return 'embedding' in prompt ? `embedding ${index}` : `visual prompt ${index}`;
  }

  /** The conditional embeddings of `prompts` in order, as rows of host arrays. */
  async encode(prompts: readonly Prompt[]): Promise<Float32Array[]> {
    return Promise.all(prompts.map((p, i) => this.encodeOne(p, i)));
  }

  private async encodeOne(prompt: Prompt, index: number): Promise<Float32Array> {
    switch (kindOf(prompt, index)) {
      case 'text':
        return this.text(prompt as string);
      case 'embedding':
        return this.embedding(prompt instanceof Float32Array || prompt instanceof tf.Tensor ? prompt : (prompt as EmbeddingPrompt).embedding, index);
      case 'prepared':
        return this.prepared((prompt as PreparedVisualPrompt).pixelValues, index);
      case 'visual':
        return this.visual(prompt as VisualPrompt, index);
    }
  }

  private async text(text: string): Promise<Float32Array> {
    // Long prompts are cut to the model's positions (BOS and EOS kept) rather than rejected.
    const ids = this.processor.tokenizer.encode(text, { truncation: true, maxLength: this.model.config.text_config.max_position_embeddings });
    const key = ids.join(' ');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    const job = (async () => {
      const row = this.model.conditionalEmbeddings({ inputIds: [ids] });
      this.textEncoderPasses++;
      try {
        return (await row.data()) as Float32Array;
      } finally {
        row.dispose();
      }
    })();
    this.pending.set(key, job);
    try {
      const value = await job;
      this.cache.set(key, value);
      return value;
    } finally {
      this.pending.delete(key);
    }
  }

  private async embedding(value: Float32Array | tf.Tensor, index: number): Promise<Float32Array> {
    const dim = this.model.config.projection_dim;
    const shape = value instanceof tf.Tensor ? value.shape : [value.length];
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== dim || shape.some((d) => d !== 1 && d !== dim)) {
      throw new ShapeError(`prompts[${index}] (embedding)`, `[${dim}] (the model's projection_dim)`, shape);
    }
    const data = value instanceof tf.Tensor ? ((await value.data()) as Float32Array) : value;
    if (!data.every(Number.isFinite)) throw new InvalidArgumentError(`prompts[${index}] (embedding): contains NaN or infinite values`);
    return Float32Array.from(data);
  }

  private async prepared(value: Float32Array | tf.Tensor, index: number): Promise<Float32Array> {
    const { data, height, width } = await this.pixels({ pixelValues: value }, index);
    return this.imageEmbedding(data, height, width);
  }

  private async visual(prompt: VisualPrompt, index: number): Promise<Float32Array> {
    const { data, height, width } = await this.pixels(prompt, index);
    return this.imageEmbedding(data, height, width);
  }

  /** Normalised pixel values [3, height, width] of a visual prompt, as the vision tower receives them. */
  async pixels(prompt: VisualPrompt | PreparedVisualPrompt, index: number): Promise<{ data: Float32Array; height: number; width: number }> {
    if ('pixelValues' in prompt) {
      const value = prompt.pixelValues;
      const data = value instanceof tf.Tensor ? ((await value.data()) as Float32Array) : value;
      const side = Math.round(Math.sqrt(data.length / 3));
      const ok = value instanceof tf.Tensor ? value.rank === 3 && value.shape[0] === 3 && value.shape[1] === value.shape[2] : side * side * 3 === data.length;
      if (!ok) {
        throw new ShapeError(`prompts[${index}].pixelValues`, '[3, S, S] normalised pixel values', value instanceof tf.Tensor ? value.shape : [data.length]);
      }
      return { data, height: side, width: side };
    }
    const image = await loadImage(prompt.image);
    if (prompt.mask !== undefined && prompt.box !== undefined) {
      throw new InvalidArgumentError(`prompts[${index}]: give either mask or box, not both`);
    }
    if (prompt.mask === undefined && prompt.box === undefined) {
      const { data, shape } = this.processor.imageProcessor.preprocess([image]);
      return { data, height: shape[2], width: shape[3] };
    }
    const region: RawImage | PromptBox = prompt.mask !== undefined ? await loadImage(prompt.mask) : prompt.box!;
    const size = inputSide(this.processor);
    return { data: makeVisualPrompt(image, region, { size, processor: this.processor.imageProcessor }), height: size, width: size };
  }

  private async imageEmbedding(pixels: Float32Array, height: number, width = height): Promise<Float32Array> {
    const row = tf.tidy(() => this.model.conditionalEmbeddings({ conditionalPixelValues: tf.tensor4d(pixels, [1, 3, height, width]) }));
    try {
      return (await row.data()) as Float32Array;
    } finally {
      row.dispose();
    }
  }
}

export type PromptKind = 'text' | 'visual' | 'prepared' | 'embedding';

export function kindOf(prompt: unknown, index: number): PromptKind {
  if (typeof prompt === 'string') {
    if (prompt.trim().length === 0) throw new InvalidArgumentError(`prompts[${index}]: expected a non-empty text, got an empty string`);
    return 'text';
  }
  if (prompt instanceof Float32Array || prompt instanceof tf.Tensor) return 'embedding';
  if (typeof prompt === 'object' && prompt !== null && !Array.isArray(prompt)) {
    if ('embedding' in prompt) return 'embedding';
    if ('pixelValues' in prompt) return 'prepared';
    if ('image' in prompt) return 'visual';
  }
  throw new InvalidArgumentError(
    `prompts[${index}]: expected a text, a visual prompt {image, mask | box}, prepared pixel values {pixelValues} or an embedding (Float32Array or tensor), got ${describe(prompt)}`,
  );
}

/** The square side the processor resizes to (the model's input size). */
export function inputSide(processor: CLIPSegProcessor): number {
  const size = processor.imageProcessor.options.size;
  if (!('height' in size) || size.height !== size.width) {
    throw new InvalidArgumentError('processor: the model needs a fixed square input size (preprocessor size {height, width} with height = width)');
  }
  return size.height;
}
