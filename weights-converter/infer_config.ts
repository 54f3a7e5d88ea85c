/**
 * A `config.json` for weights that come without one (the paper's release, or a bare weights file), read off the
 * HF-layout shapes. Shapes fix every size; what they cannot show takes the values of the published models, as
 * OpenAI's `build_model` and the original `CLIPDensePredT` defaults do: attention heads of width 64 in both
 * towers, 4 decoder heads, extract_layers [3, 6, 9] (one per decoder block), FiLM at decoder step 0.
 * `overrides` (a partial config.json, e.g. from `--config`) replaces any of these.
 */
import { CLIPSegConfig } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';

type Json = Record<string, unknown>;

const TOWER_HEAD_WIDTH = 64;
const DEFAULT_DECODER_HEADS = 4;
const DEFAULT_EXTRACT_LAYERS = [3, 6, 9];

function countLayers(shapes: ReadonlyMap<string, readonly number[]>, prefix: string): number {
  const indices = new Set<number>();
  const pattern = new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.`);
  for (const key of shapes.keys()) {
    const m = pattern.exec(key);
    if (m !== null) indices.add(Number(m[1]));
  }
  return indices.size;
}

function dim(shapes: ReadonlyMap<string, readonly number[]>, key: string, axis: number): number {
  const shape = shapes.get(key);
  if (shape === undefined || shape.length <= axis) {
    throw new ConfigError(`cannot infer the config: the weights lack '${key}'${shape === undefined ? '' : ` with at least ${axis + 1} dimensions`}`);
  }
  return shape[axis]!;
}

function heads(width: number, what: string): number {
  if (width % TOWER_HEAD_WIDTH !== 0) {
    throw new ConfigError(
      `cannot infer ${what}.num_attention_heads for hidden size ${width} (not a multiple of ${TOWER_HEAD_WIDTH}); give it in the config overrides`,
    );
  }
  return width / TOWER_HEAD_WIDTH;
}

/** Deep-merges `overrides` into `base` one level down (`text_config` / `vision_config` are merged key by key). */
export function mergeConfigJson(base: Json, overrides: Json | undefined): Json {
  if (overrides === undefined) return base;
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const inner = out[key];
    const nested = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
    out[key] = nested(inner) && nested(value) ? { ...inner, ...value } : value;
  }
  return out;
}

/** The config.json values implied by HF-layout shapes keyed by HF names. */
export function inferConfigJson(shapes: ReadonlyMap<string, readonly number[]>, overrides?: Json): Json {
  const overrideText = (overrides?.text_config ?? {}) as Json;
  const overrideVision = (overrides?.vision_config ?? {}) as Json;
  const visionWidth = dim(shapes, 'clip.vision_model.embeddings.patch_embedding.weight', 0);
  const patch = dim(shapes, 'clip.vision_model.embeddings.patch_embedding.weight', 2);
  const positions = dim(shapes, 'clip.vision_model.embeddings.position_embedding.weight', 0);
  const grid = Math.round(Math.sqrt(positions - 1));
  if (grid * grid !== positions - 1) throw new ConfigError(`cannot infer vision_config.image_size: ${positions} position rows are not a square grid plus one`);
  const textWidth = dim(shapes, 'clip.text_model.embeddings.token_embedding.weight', 1);
  const depth = countLayers(shapes, 'decoder.layers.');
  const extract = (overrides?.extract_layers as number[] | undefined) ?? DEFAULT_EXTRACT_LAYERS;
  if (extract.length !== depth) {
    throw new ConfigError(`the weights have ${depth} decoder blocks but extract_layers is [${extract.join(', ')}]; give extract_layers (one vision layer per block) in the config overrides`);
  }
  const inferred: Json = {
    text_config: {
      vocab_size: dim(shapes, 'clip.text_model.embeddings.token_embedding.weight', 0),
      hidden_size: textWidth,
      intermediate_size: dim(shapes, 'clip.text_model.encoder.layers.0.mlp.fc1.weight', 0),
      num_hidden_layers: countLayers(shapes, 'clip.text_model.encoder.layers.'),
      num_attention_heads: overrideText.num_attention_heads ?? heads(textWidth, 'text_config'),
      max_position_embeddings: dim(shapes, 'clip.text_model.embeddings.position_embedding.weight', 0),
    },
    vision_config: {
      hidden_size: visionWidth,
      intermediate_size: dim(shapes, 'clip.vision_model.encoder.layers.0.mlp.fc1.weight', 0),
      num_hidden_layers: countLayers(shapes, 'clip.vision_model.encoder.layers.'),
      num_attention_heads: overrideVision.num_attention_heads ?? heads(visionWidth, 'vision_config'),
      num_channels: dim(shapes, 'clip.vision_model.embeddings.patch_embedding.weight', 1),
      image_size: grid * patch,
      patch_size: patch,
    },
    projection_dim: dim(shapes, 'clip.visual_projection.weight', 0),
    extract_layers: extract,
    reduce_dim: dim(shapes, 'decoder.film_mul.weight', 0),
    decoder_num_attention_heads: DEFAULT_DECODER_HEADS,
    decoder_intermediate_size: dim(shapes, 'decoder.layers.0.mlp.fc1.weight', 0),
    conditional_layer: 0,
    use_complex_transposed_convolution: shapes.has('decoder.transposed_convolution.0.weight'),
  };
  return mergeConfigJson(inferred, overrides);
}

/** `inferConfigJson` as a validated config. */
export function inferConfig(shapes: ReadonlyMap<string, readonly number[]>, overrides?: Json): CLIPSegConfig {
  return new CLIPSegConfig(inferConfigJson(shapes, overrides));
}
