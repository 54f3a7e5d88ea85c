/**
 * Strict weight loading and state-dict export. Every key, shape and dtype is checked before any value is set;
 * a missing, unexpected or mis-shaped key is a `CheckpointKeyError` naming the key and both shapes. Only the
 * int64 `*.position_ids` buffers that older checkpoints carry are skipped.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointKeyError, formatShape } from '../errors.js';
import type { Parameter } from '../layers/scope.js';
import type { PreTrainedModel } from './base.js';
import { convertLayout, hfShapeOf, layoutKindOf, tfjsToHf, type WeightLayout } from './layout.js';

/** What loading needs from a checkpoint; `SafetensorsFile` is one. */
export interface TensorSource {
  keys(): string[];
  info(key: string): { dtype: string; shape: readonly number[] };
  getFloat32(key: string): Float32Array;
  /**
   * Optional: the tensor as float32 written into the start of `target` (at least its size), returning that view.
   * A source that reads from disk saves an allocation per tensor with it. It must not make tensors (the target
   * may be a view of the wasm backend's heap).
   */
  readFloat32Into?(key: string, target: Float32Array): Float32Array;
}

export interface LoadOptions {
  /** Prefix of this model's keys in the source, e.g. `clip.` when reading a CLIPSegModel out of a segmentation checkpoint. */
  prefix?: string;
  /**
   * Ignore source keys outside the model's own top-level modules (a text model reading a full checkpoint).
   * Keys inside them must still match exactly.
   */
  partial?: boolean;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
const MAX_LISTED = 12;

export function isBufferKey(key: string): boolean {
  return key.endsWith('.position_ids');
}

/** Loads `source` (in `layout`) into the model's parameters. */
export function loadStateDict(model: PreTrainedModel, source: TensorSource, layout: WeightLayout, options: LoadOptions = {}): void {
  const prefix = options.prefix ?? '';
  const params = new Map(model.parameters().map((p) => [p.key, p]));
  const modules = new Set([...params.keys()].map(topModule));
  const problems: string[] = [];
  const plan: [string, string][] = [];
  for (const sourceKey of source.keys()) {
    if (isBufferKey(sourceKey)) continue;
    if (!sourceKey.startsWith(prefix)) {
      if (options.partial) continue;
      problems.push(`unexpected key '${sourceKey}' ${formatShape(source.info(sourceKey).shape)}`);
      continue;
    }
    const key = sourceKey.slice(prefix.length);
    const param = params.get(key);
    if (param === undefined) {
      if (!(options.partial && !modules.has(topModule(key)))) {
        problems.push(`unexpected key '${sourceKey}' ${formatShape(source.info(sourceKey).shape)}`);
      }
      continue;
    }
    const { dtype, shape } = source.info(sourceKey);
    const expected = layout === 'hf' ? hfShapeOf(key, param.shape) : [...param.shape];
    if (!FLOAT_DTYPES.has(dtype)) {
      problems.push(`key '${sourceKey}': expected a floating-point tensor, got ${dtype}`);
    } else if (!sameShape(shape, expected)) {
      problems.push(`key '${sourceKey}': the model expects ${formatShape(expected)} (${layout} layout), the checkpoint has ${formatShape(shape)}`);
    }
    plan.push([sourceKey, key]);
  }
  const found = new Set(plan.map(([, key]) => key));
  for (const [key, param] of params) {
    if (!found.has(key)) {
      const expected = layout === 'hf' ? hfShapeOf(key, param.shape) : [...param.shape];
      problems.push(`missing key '${prefix}${key}' ${formatShape(expected)}`);
    }
  }
  if (problems.length > 0) {
    const listed = problems.slice(0, MAX_LISTED).join('\n  ');
    const more = problems.length > MAX_LISTED ? `\n  ... and ${problems.length - MAX_LISTED} more` : '';
    throw new CheckpointKeyError(`checkpoint does not match the model (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${listed}${more}`);
  }
  assignAll(plan.map(([sourceKey, key]) => ({ sourceKey, param: params.get(key)! })), source, layout);
}

interface HeapTensor {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface HeapBackend {
  typedArrayFromHeap(info: HeapTensor): Float32Array | Int32Array | Uint8Array;
}

/**
 * The wasm backend keeps a tensor's values in its module's heap and hands out a view of them, so a weight can be
 * read or converted straight into its tensor. Other backends (and any wasm build without that view) get an array.
 */
function heapBackend(): HeapBackend | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' ? (backend as HeapBackend) : undefined;
}

/**
 * Sets each parameter from the source. A fresh array per weight costs a page-faulting allocation that then waits
 * for the garbage collector: for the full model that is more time than reading and converting, and hundreds of MB
 * on top of the backend's copy. So weights that need a layout change are read into one buffer sized for the
 * largest of them, and on the wasm backend every weight lands directly in its tensor's heap memory.
 */
function assignAll(entries: { sourceKey: string; param: Parameter }[], source: TensorSource, layout: WeightLayout): void {
  const heap = heapBackend();
  const readInto = source.readFloat32Into?.bind(source);
  const permuted = (key: string): boolean => layout !== 'tfjs' && layoutKindOf(key) !== 'identity';
  let scratchSize = 0;
  if (readInto !== undefined) {
    for (const { param } of entries) if (permuted(param.key)) scratchSize = Math.max(scratchSize, param.size);
  }
  const scratch = new Float32Array(scratchSize);
  for (const { sourceKey, param } of entries) {
    const { shape } = source.info(sourceKey);
    // Read before any tensor is made: growing the wasm heap would detach a view taken earlier.
    const values = permuted(param.key) && readInto !== undefined ? readInto(sourceKey, scratch) : undefined;
    if (heap === undefined) {
      param.assign(convertLayout(param.key, shape, values ?? source.getFloat32(sourceKey), layout, 'tfjs').data);
      continue;
    }
    tf.tidy(() => {
      // Weights kept as they are go from a source that reads into buffers straight into the heap.
      const data = values ?? (readInto !== undefined && !permuted(param.key) ? undefined : source.getFloat32(sourceKey));
      // tf.fill allocates in the heap; tf.zeros would copy a host array of zeros there.
      const tensor = tf.fill([...param.shape], 0, 'float32');
      const target = heap.typedArrayFromHeap(tensor as unknown as HeapTensor) as Float32Array;
      if (data === undefined) readInto!(sourceKey, target);
      else if (permuted(param.key)) convertLayout(param.key, shape, data, layout, 'tfjs', target);
      else target.set(data);
      param.assignTensor(tensor);
    });
  }
}

export interface StateDictEntry {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** The model's parameters as float32 arrays in `layout`, keyed by state-dict key, in registration order. */
export function stateDict(model: PreTrainedModel, layout: WeightLayout): Record<string, StateDictEntry> {
  const out: Record<string, StateDictEntry> = {};
  for (const p of model.parameters()) {
    const data = p.variable.dataSync() as Float32Array;
    const laid = layout === 'tfjs' ? { shape: [...p.shape], data } : tfjsToHf(p.key, p.shape, data);
    out[p.key] = { dtype: 'F32', shape: laid.shape, data: laid.data };
  }
  return out;
}

/**
 * The prefix under which `source` holds `model`'s keys: none, or `clip.` for a CLIP part read from a
 * segmentation checkpoint (transformers' base-model prefix).
 */
export function detectPrefix(model: PreTrainedModel, source: TensorSource): string {
  const first = model.parameters()[0]?.key ?? '';
  const keys = new Set(source.keys());
  if (keys.has(first)) return '';
  if (keys.has(`clip.${first}`)) return 'clip.';
  return '';
}

function topModule(key: string): string {
  const dot = key.indexOf('.');
  return dot === -1 ? key : key.slice(0, dot);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
