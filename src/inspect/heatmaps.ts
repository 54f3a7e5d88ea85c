/**
 * Heatmaps of captured activations laid over the image: the CLS token's attention over the patch grid per vision
 * layer and head (and the head mean), attention rollout through the vision layers, and the per-token norms of the
 * decoder layers' outputs. Each map is min-max normalised, upsampled (bilinear) to the image's own size, coloured
 * and blended over the image.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { type ColormapName, colormapIndex, colormapTable } from '../processor/colormap.js';
import { type RawImage, toRGB } from '../processor/image.js';
import { resizeProbabilityMap } from '../processor/postprocess.js';
import { attentionRollout, clsAttentionMaps, rolloutClsMap, tokenNormMap } from './rollout.js';

/** Capture patterns that give every heatmap `computeHeatmaps` draws. */
export const HEATMAP_CAPTURES: readonly string[] = ['clip.vision_model.encoder.layers.*.self_attn:attn_weights', 'decoder.layers.*'];

const VISION_ATTENTION = /^clip\.vision_model\.encoder\.layers\.(\d+)\.self_attn:attn_weights$/;
const DECODER_LAYER = /^decoder\.layers\.(\d+)$/;

export interface Heatmap {
  /** File-name friendly, e.g. `vision_layer03_head05`, `vision_rollout`, `decoder_layer1_prompt0`. */
  name: string;
  /** Row-major values over the patch grid. */
  data: Float32Array;
  side: number;
}

export interface HeatmapRenderOptions {
  colormap?: ColormapName;
  /** Opacity of the colours over the image (default 0.6). */
  alpha?: number;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function byLayer(captures: Record<string, tf.Tensor>, pattern: RegExp): [number, tf.Tensor][] {
  return Object.entries(captures)
    .map(([key, t]) => [key.match(pattern), t] as const)
    .filter((e): e is readonly [RegExpMatchArray, tf.Tensor] => e[0] !== null)
    .map(([m, t]) => [Number(m[1]), t] as [number, tf.Tensor])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The maps of the first image's row (captures from `ClipSeg.inspect` or `clipseg inspect` with the patterns of
 * `HEATMAP_CAPTURES`); decoder maps come per prompt. Returns plain arrays; no tensor outlives the call.
 */
export function computeHeatmaps(captures: Record<string, tf.Tensor>): Heatmap[] {
  const maps: Heatmap[] = [];
  const attentions = byLayer(captures, VISION_ATTENTION);
  const digits = String(Math.max(0, ...attentions.map(([l]) => l))).length;
  for (const [layer, attn] of attentions) {
    const grid = tf.tidy(() => clsAttentionMaps(attn.slice(0, 1), `layer ${layer} attention`));
    const [, count, side] = grid.shape;
    const values = grid.dataSync() as Float32Array;
    grid.dispose();
    const plane = side * side;
    for (let h = 0; h < count; h++) {
      const name = h === count - 1 ? `vision_layer${pad(layer, digits)}_mean` : `vision_layer${pad(layer, digits)}_head${pad(h, String(count - 2).length)}`;
      maps.push({ name, data: values.slice(h * plane, (h + 1) * plane), side });
    }
  }
  if (attentions.length > 0) {
    const grid = tf.tidy(() => rolloutClsMap(attentionRollout(attentions.map(([, a]) => a.slice(0, 1)))));
    maps.push({ name: 'vision_rollout', data: grid.dataSync() as Float32Array, side: grid.shape[1] });
    grid.dispose();
  }
  for (const [layer, hidden] of byLayer(captures, DECODER_LAYER)) {
    const grid = tokenNormMap(hidden, `decoder.layers.${layer}`);
    const [prompts, side] = grid.shape;
    const values = grid.dataSync() as Float32Array;
    grid.dispose();
    for (let p = 0; p < prompts; p++) {
      maps.push({ name: `decoder_layer${layer}_prompt${p}`, data: values.slice(p * side * side, (p + 1) * side * side), side });
    }
  }
  return maps;
}

/** Normalises a map to [0, 1], upsamples it to the image and blends its colours over the image. */
export function renderHeatmap(map: Heatmap, image: RawImage, options: HeatmapRenderOptions = {}): RawImage {
  const alpha = options.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new InvalidArgumentError(`alpha: expected a number in [0, 1], got ${alpha}`);
  if (map.data.length !== map.side * map.side) throw new InvalidArgumentError(`heatmap ${map.name}: expected ${map.side}² values, got ${map.data.length}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  const unit = Float32Array.from(map.data, (v) => (v - lo) / span);
  const rgb = toRGB(image);
  const up = resizeProbabilityMap({ data: unit, width: map.side, height: map.side }, { width: rgb.width, height: rgb.height });
  const table = colormapTable(options.colormap ?? 'inferno');
  const out = new Uint8Array(rgb.data.length);
  for (let i = 0; i < up.data.length; i++) {
    const k = colormapIndex(up.data[i]!) * 3;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(rgb.data[i * 3 + c]! * (1 - alpha) + table[k + c]! * alpha);
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 3 };
}
