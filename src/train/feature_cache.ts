/**
 * An on-disk cache of the frozen CLIP activations the decoder consumes, so that later epochs skip the vision
 * encoder when CLIP is frozen.
 *
 * An entry is keyed by the SHA-256 of the sample's normalised pixels: identical pixels mean the same image, the
 * same crop and no augmentation, so the key covers "image id + crop" without trusting any label, and an augmented
 * sample (different pixels) simply misses. Entries live under `DIR/<model fingerprint>/`, where the fingerprint
 * hashes the vision config, the extract layers and every vision-tower weight, so activations of another model (or
 * of the same architecture with other weights) are never reused; each file also records its fingerprint, checked
 * on read. Activations are stored as float16 safetensors (one tensor per extract layer, [T, D]).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { floatToHalf, halfToFloat, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';

const FORMAT = 'clipseg-tfjs-feature-cache';

/** One sample's activations: a [T, D] array per extract layer. */
interface Entry {
  layers: Float32Array[];
  shape: [number, number];
}

/** A digest of everything the cached activations depend on: the vision config, extract layers and vision weights. */
export function modelFingerprint(model: CLIPSegForImageSegmentation): string {
  const hash = createHash('sha256');
  const vision = model.config.vision_config.toJSON();
  hash.update(JSON.stringify({ vision, extract_layers: model.config.extract_layers }));
  for (const p of model.namedParameters()) {
    if (!p.name.startsWith('clip.vision_model.')) continue;
    const data = p.variable.dataSync() as Float32Array;
    hash.update(`${p.name}:${p.variable.shape.join('x')};`);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex').slice(0, 32);
}

export interface FeatureCacheStats {
  hits: number;
  misses: number;
}

export class FeatureCache {
  readonly dir: string;
  readonly fingerprint: string;
  readonly stats: FeatureCacheStats = { hits: 0, misses: 0 };
  private readonly model: CLIPSegForImageSegmentation;
  private readonly folder: string;

  private constructor(dir: string, model: CLIPSegForImageSegmentation, fingerprint: string) {
    this.dir = dir;
    this.model = model;
    this.fingerprint = fingerprint;
    this.folder = path.join(dir, fingerprint);
  }

  /** A cache in `dir` for `model`'s current vision weights (fingerprinted now: load weights before opening). */
  static async open(dir: string, model: CLIPSegForImageSegmentation): Promise<FeatureCache> {
    if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError(`dir: expected a folder path, got ${JSON.stringify(dir)}`);
    const cache = new FeatureCache(dir, model, modelFingerprint(model));
    await fs.mkdir(cache.folder, { recursive: true });
    return cache;
  }

  /**
   * The extract-layer activations for a batch of normalised images `pixels` ([B, 3, S, S] as a flat array):
   * cached rows are read, the others computed with the vision tower (outside any gradient tape) and stored.
   * Returns one [B, T, D] tensor per extract layer, owned by the caller.
   */
  async activations(pixels: Float32Array, batch: number, size: number): Promise<tf.Tensor3D[]> {
    const image = 3 * size * size;
    if (pixels.length !== batch * image) {
      throw new InvalidArgumentError(`pixels: expected ${batch * image} values for [${batch}, 3, ${size}, ${size}], got ${pixels.length}`);
    }
    const keys = Array.from({ length: batch }, (_, b) => digest(pixels.subarray(b * image, (b + 1) * image)));
    const rows: (Entry | undefined)[] = await Promise.all(keys.map((k) => this.read(k)));
    const missing = rows.flatMap((r, b) => (r === undefined ? [b] : []));
    const layers = this.model.config.extract_layers.length;
    if (missing.length > 0) {
      const subset = new Float32Array(missing.length * image);
      missing.forEach((b, j) => subset.set(pixels.subarray(b * image, (b + 1) * image), j * image));
      const input = tf.tensor4d(subset, [missing.length, 3, size, size]);
      const computed = this.model.visionActivations(input);
      input.dispose();
      const values = computed.map((t) => t.dataSync() as Float32Array);
      const [, tokens, width] = computed[0]!.shape;
      tf.dispose(computed);
      const per = tokens * width;
      for (const [j, b] of missing.entries()) {
        // Fresh activations are rounded to float16 as stored, so a run gives the same numbers whether it hits or misses.
        const entry: Entry = { layers: values.map((v) => roundToHalf(v.subarray(j * per, (j + 1) * per))), shape: [tokens, width] };
        rows[b] = entry;
        await this.write(keys[b]!, entry);
      }
      this.stats.misses += missing.length;
    }
    this.stats.hits += batch - missing.length;
    const [tokens, width] = rows[0]!.shape;
    return Array.from({ length: layers }, (_, l) => {
      const data = new Float32Array(batch * tokens * width);
      rows.forEach((r, b) => data.set(r!.layers[l]!, b * tokens * width));
      return tf.tensor3d(data, [batch, tokens, width]);
    });
  }

  private fileFor(key: string): string {
    return path.join(this.folder, key.slice(0, 2), `${key}.safetensors`);
  }

  private async read(key: string): Promise<Entry | undefined> {
    const file = this.fileFor(key);
    let st;
    try {
      st = await readSafetensors(file);
    } catch {
      // Absent, or unreadable (e.g. a write cut short): recompute and overwrite.
      return undefined;
    }
    if (st.metadata.format !== FORMAT || st.metadata.fingerprint !== this.fingerprint) return undefined;
    const count = this.model.config.extract_layers.length;
    const layers: Float32Array[] = [];
    let shape: [number, number] | undefined;
    for (let l = 0; l < count; l++) {
      if (!st.has(`act.${l}`)) return undefined;
      const [tokens, width] = st.info(`act.${l}`).shape;
      if (shape !== undefined && (shape[0] !== tokens || shape[1] !== width)) return undefined;
      shape = [tokens!, width!];
      layers.push(st.getFloat32(`act.${l}`));
    }
    return shape === undefined ? undefined : { layers, shape };
  }

  private async write(key: string, entry: Entry): Promise<void> {
    const file = this.fileFor(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tensors = Object.fromEntries(
      entry.layers.map((values, l) => [`act.${l}`, { dtype: 'F16' as const, shape: entry.shape, data: toHalf(values) }]),
    );
    await writeSafetensors(file, tensors, { format: FORMAT, fingerprint: this.fingerprint });
  }
}

function digest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

function roundToHalf(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfToFloat(floatToHalf(values[i]!));
  return out;
}

function toHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]!);
  return out;
}
