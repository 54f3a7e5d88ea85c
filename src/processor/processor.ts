/**
 * `CLIPSegProcessor`: the tokenizer and the image processor behind one call, with the semantics of transformers'
 * `processing_clipseg.py`: `text` gives ids and an attention mask, `images` give pixel values, `visualPrompt` goes
 * through the same image processor and gives conditional pixel values; text and a visual prompt together are an
 * error. Outputs are named like the model's inputs so they can be passed to `forward` as they are.
 * Browser-safe: `fromPretrained` delegates to a loader that the Node entry registers.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import type { RawImage } from './image.js';
import type { CLIPSegImageProcessor, PixelValues } from './image_processor.js';
import type { CLIPTokenizer, Padding } from './tokenizer.js';

export interface ProcessorInputs {
  text?: string | readonly string[];
  images?: RawImage | readonly RawImage[];
  visualPrompt?: RawImage | readonly RawImage[];
  /** Tokenizer padding (HF default: none; a batch of unequal lengths then needs `true` or 'max_length'). */
  padding?: Padding;
  truncation?: boolean;
  maxLength?: number;
}

/** Tensors the caller owns (dispose them, or pass the object to `disposeProcessorOutput`). */
export interface ProcessorOutput {
  inputIds?: tf.Tensor2D;
  attentionMask?: tf.Tensor2D;
  pixelValues?: tf.Tensor4D;
  conditionalPixelValues?: tf.Tensor4D;
}

/** The same content as host arrays (`returnTensors: false`). */
export interface ProcessorArrays {
  inputIds?: number[][];
  attentionMask?: number[][];
  pixelValues?: PixelValues;
  conditionalPixelValues?: PixelValues;
}

export type ProcessorLoader = (source?: string) => Promise<CLIPSegProcessor>;

let loader: ProcessorLoader | undefined;

function asList<T>(value: T | readonly T[], name: string): readonly T[] {
  const list = Array.isArray(value) ? (value as readonly T[]) : [value as T];
  if (list.length === 0) throw new InvalidArgumentError(`${name}: expected at least one item, got an empty array`);
  return list;
}

export class CLIPSegProcessor {
  readonly tokenizer: CLIPTokenizer;
  readonly imageProcessor: CLIPSegImageProcessor;

  constructor(tokenizer: CLIPTokenizer, imageProcessor: CLIPSegImageProcessor) {
    if (tokenizer === null || typeof tokenizer !== 'object' || typeof tokenizer.encodeBatch !== 'function') {
      throw new InvalidArgumentError('tokenizer: expected a CLIPTokenizer');
    }
    if (imageProcessor === null || typeof imageProcessor !== 'object' || typeof imageProcessor.preprocess !== 'function') {
      throw new InvalidArgumentError('imageProcessor: expected a CLIPSegImageProcessor');
    }
    this.tokenizer = tokenizer;
    this.imageProcessor = imageProcessor;
  }

  /** Installs the function `fromPretrained` uses (the Node entry registers one that reads model folders and the hub). */
  static registerLoader(fn: ProcessorLoader): void {
    loader = fn;
  }

  /**
   * The processor of a model folder or hub id: its tokenizer files (else the shipped CLIP vocabulary) and its
   * `preprocessor_config.json` (else the CIDAS values). Without `source`, the shipped demo model's.
   */
  static async fromPretrained(source?: string): Promise<CLIPSegProcessor> {
    if (loader === undefined) {
      throw new InvalidArgumentError('CLIPSegProcessor.fromPretrained needs file access: import the package entry (Node), or construct the processor from a tokenizer and an image processor');
    }
    return loader(source);
  }

  /** Host-array form of `call`: ids as number[][], pixel values as NCHW Float32Array with their shape. */
  callArrays(inputs: ProcessorInputs): ProcessorArrays {
    if (inputs === null || typeof inputs !== 'object') {
      throw new InvalidArgumentError(`inputs: expected an object {text, images, visualPrompt}, got ${inputs === null ? 'null' : typeof inputs}`);
    }
    const { text, images, visualPrompt } = inputs;
    if (text === undefined && images === undefined && visualPrompt === undefined) {
      throw new InvalidArgumentError('inputs: expected at least one of text, images or visualPrompt');
    }
    if (text !== undefined && visualPrompt !== undefined) {
      throw new InvalidArgumentError('inputs: pass either text or visualPrompt, not both (the model takes one kind of prompt per call)');
    }
    const out: ProcessorArrays = {};
    if (text !== undefined) {
      const texts = typeof text === 'string' ? [text] : asList(text, 'text');
      const encoded = this.tokenizer.encodeBatch(texts, {
        ...(inputs.padding !== undefined ? { padding: inputs.padding } : {}),
        ...(inputs.truncation !== undefined ? { truncation: inputs.truncation } : {}),
        ...(inputs.maxLength !== undefined ? { maxLength: inputs.maxLength } : {}),
      });
      const lengths = new Set(encoded.input_ids.map((ids) => ids.length));
      if (lengths.size > 1) {
        throw new InvalidArgumentError(
          `text: the ${texts.length} texts give ${[...lengths].join(', ')} tokens; a batch needs one length: pass padding: true (or 'max_length')`,
        );
      }
      out.inputIds = encoded.input_ids;
      out.attentionMask = encoded.attention_mask;
    }
    if (images !== undefined) out.pixelValues = this.imageProcessor.preprocess(asList(images, 'images'));
    if (visualPrompt !== undefined) out.conditionalPixelValues = this.imageProcessor.preprocess(asList(visualPrompt, 'visualPrompt'));
    return out;
  }

  /** HF `processor(text=..., images=..., visual_prompt=...)` with tensors out, owned by the caller. */
  call(inputs: ProcessorInputs): ProcessorOutput {
    const arrays = this.callArrays(inputs);
    const out: ProcessorOutput = {};
    if (arrays.inputIds !== undefined) {
      out.inputIds = tf.tensor2d(arrays.inputIds, [arrays.inputIds.length, arrays.inputIds[0]!.length], 'int32');
      out.attentionMask = tf.tensor2d(arrays.attentionMask!, [arrays.attentionMask!.length, arrays.attentionMask![0]!.length], 'int32');
    }
    if (arrays.pixelValues !== undefined) out.pixelValues = tf.tensor4d(arrays.pixelValues.data, arrays.pixelValues.shape);
    if (arrays.conditionalPixelValues !== undefined) {
      out.conditionalPixelValues = tf.tensor4d(arrays.conditionalPixelValues.data, arrays.conditionalPixelValues.shape);
    }
    return out;
  }
}

/** Disposes every tensor of a processor output. */
export function disposeProcessorOutput(output: ProcessorOutput): void {
  tf.dispose(Object.values(output).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
}
