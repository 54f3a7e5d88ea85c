/**
 * Strict weight loading and state-dict export. Every key, shape and dtype is checked before any value is set;
 * a missing, unexpected or mis-shaped key is a `CheckpointKeyError` naming the key and both shapes. Only the
 * int64 `*.position_ids` buffers that older checkpoints carry are skipped.
 */
import { CheckpointKeyError, formatShape } from '../errors.js';
import type { PreTrainedModel } from './base.js';
import { convertLayout, hfShapeOf, tfjsToHf, type WeightLayout } from './layout.js';

/** What loading needs from a checkpoint; `SafetensorsFile` is one. */
export interface TensorSource {
  keys(): string[];
  info(key: string): { dtype: string; shape: readonly number[] };
  getFloat32(key: string): Float32Array;
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
  for (const [sourceKey, key] of plan) {
    const { shape } = source.info(sourceKey);
    const { data } = convertLayout(key, shape, source.getFloat32(sourceKey), layout, 'tfjs');
    params.get(key)!.assign(data);
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
