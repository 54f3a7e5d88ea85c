/**
 * Training checkpoints: one safetensors file per checkpoint holding the trainable parameters (HF keys), the AdamW
 * moments (`optim.m.<key>`, `optim.v.<key>`) and, in the metadata, JSON strings for the step (overall and per
 * parameter), the model config and the scalar training state (data position, RNG state, run settings). Files are
 * `ckpt-<step:06>.safetensors` in one folder with a `latest` pointer file; every write is atomic, the pointer
 * moves only after the new file is complete, and only then are checkpoints beyond the last `keep` removed, so a
 * crash at any point leaves a usable checkpoint.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointKeyError, FileFormatError, FileNotFoundError, InvalidArgumentError, ShapeError, formatShape } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';
import type { AdamW, AdamWState } from './adamw.js';

export const CHECKPOINT_FORMAT = 'clipseg-tfjs-train-checkpoint';
export const CHECKPOINT_VERSION = '1';
export const LATEST_POINTER = 'latest';
const M_PREFIX = 'optim.m.';
const V_PREFIX = 'optim.v.';
const NAME_PATTERN = /^ckpt-(\d{6,})\.safetensors$/;

type Json = Record<string, unknown>;

export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

/** What a checkpoint holds once read back. */
export interface Checkpoint {
  path: string;
  /** Optimizer steps completed when it was written. */
  step: number;
  params: Map<string, StoredTensor>;
  optimizer: AdamWState;
  /** The model's `config.json` object. */
  config: Json;
  /** Scalar training state (data position, RNG state, settings), as given to `saveCheckpoint`. */
  state: Json;
}

export interface SaveCheckpointOptions {
  /** Checkpoints to keep (the newest ones), at least 1. */
  keep: number;
}

export function checkpointName(step: number): string {
  if (!Number.isInteger(step) || step < 0) throw new InvalidArgumentError(`step: expected a non-negative integer, got ${step}`);
  return `ckpt-${String(step).padStart(6, '0')}.safetensors`;
}

/**
 * Writes the checkpoint of `step` into `dir`, points `latest` at it and prunes old ones. Returns the file's path.
 * `params` are the trainable parameters; `optimizer` must hold a moment for each of them.
 */
export async function saveCheckpoint(
  dir: string,
  contents: { step: number; params: Iterable<[string, tf.Variable]>; optimizer: AdamW; config: Json; state: Json },
  options: SaveCheckpointOptions,
): Promise<string> {
  if (!Number.isInteger(options.keep) || options.keep < 1) {
    throw new InvalidArgumentError(`keep: expected an integer >= 1, got ${options.keep}`);
  }
  const name = checkpointName(contents.step);
  const moments = contents.optimizer.getState();
  const tensors: Record<string, WriteTensor> = {};
  for (const [key, variable] of contents.params) {
    const m = moments.m.get(key);
    const v = moments.v.get(key);
    if (m === undefined || v === undefined) throw new InvalidArgumentError(`optimizer: no moments for parameter '${key}'`);
    tensors[key] = { dtype: 'F32', shape: variable.shape, data: variable.dataSync() as Float32Array };
    tensors[M_PREFIX + key] = { dtype: 'F32', shape: variable.shape, data: m };
    tensors[V_PREFIX + key] = { dtype: 'F32', shape: variable.shape, data: v };
  }
  const metadata = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: String(contents.step),
    optimizer_step: String(moments.step),
    optimizer_steps: JSON.stringify(Object.fromEntries(moments.steps)),
    config: JSON.stringify(contents.config),
    state: JSON.stringify(contents.state),
  };
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeSafetensors(file, tensors, metadata);
  await writeFileAtomic(path.join(dir, LATEST_POINTER), `${name}\n`);
  await pruneCheckpoints(dir, options.keep, name);
  return file;
}

/** Checkpoint files in `dir`, oldest first. */
export async function listCheckpoints(dir: string): Promise<{ step: number; path: string }[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((n) => ({ match: NAME_PATTERN.exec(n), n }))
    .filter((e): e is { match: RegExpExecArray; n: string } => e.match !== null)
    .map((e) => ({ step: Number(e.match[1]), path: path.join(dir, e.n) }))
    .sort((a, b) => a.step - b.step);
}

async function pruneCheckpoints(dir: string, keep: number, current: string): Promise<void> {
  const all = await listCheckpoints(dir);
  for (const entry of all.slice(0, Math.max(0, all.length - keep))) {
    if (path.basename(entry.path) !== current) await fs.rm(entry.path, { force: true });
  }
}

/** The checkpoint `latest` points at, or undefined when `dir` has none. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const pointer = path.join(dir, LATEST_POINTER);
  let text: string;
  try {
    text = await fs.readFile(pointer, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const name = text.trim();
  if (!NAME_PATTERN.test(name)) throw new FileFormatError(pointer, `expected a checkpoint file name (ckpt-NNNNNN.safetensors), got '${name}'`);
  const file = path.join(dir, name);
  try {
    await fs.access(file);
  } catch {
    throw new FileNotFoundError(file, `checkpoint named by ${pointer}`);
  }
  return file;
}

function parseJsonEntry(file: string, metadata: Readonly<Record<string, string>>, key: string): Json {
  const text = metadata[key];
  if (text === undefined) throw new FileFormatError(file, `checkpoint metadata has no '${key}' entry`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(file, `checkpoint metadata '${key}' is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FileFormatError(file, `checkpoint metadata '${key}' is not a JSON object`);
  }
  return value as Json;
}

function parseStep(file: string, metadata: Readonly<Record<string, string>>, key: string): number {
  const step = Number(metadata[key]);
  if (metadata[key] === undefined || !Number.isInteger(step) || step < 0) {
    throw new FileFormatError(file, `checkpoint metadata '${key}' is ${JSON.stringify(metadata[key])}, expected a non-negative integer`);
  }
  return step;
}

/** Reads and validates a checkpoint written by `saveCheckpoint`. */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  const st = await readSafetensors(file);
  const { metadata } = st;
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new FileFormatError(file, `not a training checkpoint (metadata format is ${JSON.stringify(metadata.format)}, expected '${CHECKPOINT_FORMAT}')`);
  }
  if (metadata.version !== CHECKPOINT_VERSION) {
    throw new FileFormatError(file, `unsupported checkpoint version ${JSON.stringify(metadata.version)} (expected ${CHECKPOINT_VERSION})`);
  }
  const step = parseStep(file, metadata, 'step');
  const optimizerStep = parseStep(file, metadata, 'optimizer_step');
  const perParameter = parseJsonEntry(file, metadata, 'optimizer_steps');
  const params = new Map<string, StoredTensor>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  const steps = new Map<string, number>();
  const keys = st.keys();
  for (const key of keys) {
    if (key.startsWith(M_PREFIX) || key.startsWith(V_PREFIX)) continue;
    const info = st.info(key);
    if (info.dtype !== 'F32') throw new FileFormatError(file, `tensor '${key}' is ${info.dtype}, expected F32`);
    params.set(key, { shape: [...info.shape], data: st.getFloat32(key).slice() });
    for (const [prefix, target] of [[M_PREFIX, m], [V_PREFIX, v]] as const) {
      if (!st.has(prefix + key)) throw new FileFormatError(file, `parameter '${key}' has no '${prefix}${key}' tensor`);
      const moment = st.info(prefix + key);
      if (!sameShape(moment.shape, info.shape)) {
        throw new FileFormatError(file, `'${prefix}${key}' has shape ${formatShape(moment.shape)}, expected ${formatShape(info.shape)}`);
      }
      target.set(key, st.getFloat32(prefix + key).slice());
    }
    const count = perParameter[key];
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > optimizerStep) {
      throw new FileFormatError(file, `optimizer_steps has ${JSON.stringify(count)} for '${key}', expected an integer in [0, ${optimizerStep}]`);
    }
    steps.set(key, count);
  }
  for (const key of keys) {
    const base = key.startsWith(M_PREFIX) ? key.slice(M_PREFIX.length) : key.startsWith(V_PREFIX) ? key.slice(V_PREFIX.length) : undefined;
    if (base !== undefined && !params.has(base)) throw new FileFormatError(file, `moment '${key}' has no parameter '${base}'`);
  }
  return {
    path: file,
    step,
    params,
    optimizer: { step: optimizerStep, steps, m, v },
    config: parseJsonEntry(file, metadata, 'config'),
    state: parseJsonEntry(file, metadata, 'state'),
  };
}

/**
 * Copies a checkpoint's parameters into `params` and its moments into `optimizer`. The key sets must match exactly
 * and every shape must agree; nothing is written unless all checks pass.
 */
export function restoreCheckpoint(checkpoint: Checkpoint, params: ReadonlyMap<string, tf.Variable>, optimizer: AdamW): void {
  const missing = [...params.keys()].filter((k) => !checkpoint.params.has(k));
  const unexpected = [...checkpoint.params.keys()].filter((k) => !params.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing trainable parameters: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5} more)` : ''}`);
    if (unexpected.length > 0) parts.push(`unexpected parameters: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` (+${unexpected.length - 5} more)` : ''}`);
    throw new CheckpointKeyError(`${checkpoint.path}: checkpoint does not match the model's trainable parameters; ${parts.join('; ')}`);
  }
  for (const [key, variable] of params) {
    const stored = checkpoint.params.get(key)!;
    if (!sameShape(stored.shape, variable.shape)) {
      throw new ShapeError(`${checkpoint.path}: parameter '${key}'`, formatShape(variable.shape), stored.shape);
    }
  }
  optimizer.setState(checkpoint.optimizer);
  for (const [key, variable] of params) assignValues(variable, checkpoint.params.get(key)!.data);
}

function assignValues(variable: tf.Variable, data: Float32Array): void {
  tf.tidy(() => variable.assign(tf.tensor(data, variable.shape, 'float32')));
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
