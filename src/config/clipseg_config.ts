/**
 * CLIPSeg configuration, mirroring transformers' `configuration_clipseg.py` (v4.57): field names are the
 * `config.json` keys (snake_case) and defaults equal the Python class defaults, so a config read from the hub
 * and written back is the same file apart from key order.
 */
import { ConfigError } from '../errors.js';

type Json = Record<string, unknown>;

export interface CLIPSegTextConfigJson {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
  initializer_range: number;
  initializer_factor: number;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
}

export interface CLIPSegVisionConfigJson {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
  initializer_range: number;
  initializer_factor: number;
}

export const TEXT_DEFAULTS: Readonly<CLIPSegTextConfigJson> = Object.freeze({
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
  pad_token_id: 1,
  bos_token_id: 49406,
  eos_token_id: 49407,
});

export const VISION_DEFAULTS: Readonly<CLIPSegVisionConfigJson> = Object.freeze({
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
});

export const SUPPORTED_ACTIVATIONS = ['quick_gelu', 'relu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh'] as const;

/**
 * Copies the known keys of `defaults` from `values`, checking each type, and keeps unknown keys aside so that
 * writing the config back preserves them (legacy fields such as `dropout` or `transformers_version`).
 */
function overlay<T extends object>(what: string, defaults: T, ...layers: (Json | undefined)[]): { known: T; extra: Json } {
  const known = { ...defaults } as Record<string, unknown>;
  const extra: Json = {};
  for (const layer of layers) {
    if (layer === undefined || layer === null) continue;
    if (typeof layer !== 'object' || Array.isArray(layer)) {
      throw new ConfigError(`${what}: expected an object, got ${JSON.stringify(layer)}`);
    }
    for (const [key, value] of Object.entries(layer)) {
      if (key in defaults) {
        const expected = typeof (defaults as Record<string, unknown>)[key];
        if (typeof value !== expected) {
          throw new ConfigError(`${what}.${key}: expected a ${expected}, got ${JSON.stringify(value)}`);
        }
        known[key] = value;
      } else {
        extra[key] = value;
      }
    }
  }
  return { known: known as T, extra };
}

/**
 * A tower config with its legacy `*_config_dict` companion, as transformers reads it: the dict is completed with
 * the class defaults and the result replaces every modelled field of `*_config`, so a field set only in
 * `*_config` falls back to its default. Unmodelled keys of both are kept, the dict's winning.
 */
function towerOverlay<T extends object>(what: string, defaults: T, values: Json | undefined, dict: Json | undefined): { known: T; extra: Json } {
  const base = overlay(what, defaults, values);
  if (dict === undefined || dict === null) return base;
  const fromDict = overlay(`${what}_dict`, defaults, dict);
  return { known: fromDict.known, extra: { ...base.extra, ...fromDict.extra } };
}

function requirePositiveInt(what: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`${what}: expected a positive integer, got ${value}`);
}

function checkTower(what: string, c: { hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number; hidden_act: string; layer_norm_eps: number }): void {
  for (const key of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'] as const) {
    requirePositiveInt(`${what}.${key}`, c[key]);
  }
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new ConfigError(
      `${what}: hidden_size (${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads})`,
    );
  }
  if (!(SUPPORTED_ACTIVATIONS as readonly string[]).includes(c.hidden_act)) {
    throw new ConfigError(`${what}.hidden_act: expected one of ${SUPPORTED_ACTIVATIONS.join(', ')}, got '${c.hidden_act}'`);
  }
  if (!(c.layer_norm_eps > 0)) throw new ConfigError(`${what}.layer_norm_eps: expected > 0, got ${c.layer_norm_eps}`);
}

export class CLIPSegTextConfig implements CLIPSegTextConfigJson {
  vocab_size!: number;
  hidden_size!: number;
  intermediate_size!: number;
  num_hidden_layers!: number;
  num_attention_heads!: number;
  max_position_embeddings!: number;
  hidden_act!: string;
  layer_norm_eps!: number;
  attention_dropout!: number;
  initializer_range!: number;
  initializer_factor!: number;
  pad_token_id!: number;
  bos_token_id!: number;
  eos_token_id!: number;
  /** Keys of the source JSON this class does not model, kept for writing back. */
  readonly extra: Json;

  constructor(values: Partial<CLIPSegTextConfigJson> & Json = {}, overlayValues?: Json) {
    const { known, extra } = towerOverlay('text_config', TEXT_DEFAULTS, values, overlayValues);
    Object.assign(this, known);
    this.extra = extra;
    checkTower('text_config', this);
    requirePositiveInt('text_config.vocab_size', this.vocab_size);
    requirePositiveInt('text_config.max_position_embeddings', this.max_position_embeddings);
  }

  get headDim(): number {
    return this.hidden_size / this.num_attention_heads;
  }

  toJSON(): Json {
    return { ...this.extra, ...pick(this, TEXT_DEFAULTS) };
  }
}

export class CLIPSegVisionConfig implements CLIPSegVisionConfigJson {
  hidden_size!: number;
  intermediate_size!: number;
  num_hidden_layers!: number;
  num_attention_heads!: number;
  num_channels!: number;
  image_size!: number;
  patch_size!: number;
  hidden_act!: string;
  layer_norm_eps!: number;
  attention_dropout!: number;
  initializer_range!: number;
  initializer_factor!: number;
  readonly extra: Json;

  constructor(values: Partial<CLIPSegVisionConfigJson> & Json = {}, overlayValues?: Json) {
    const { known, extra } = towerOverlay('vision_config', VISION_DEFAULTS, values, overlayValues);
    Object.assign(this, known);
    this.extra = extra;
    checkTower('vision_config', this);
    requirePositiveInt('vision_config.num_channels', this.num_channels);
    requirePositiveInt('vision_config.image_size', this.image_size);
    requirePositiveInt('vision_config.patch_size', this.patch_size);
    if (this.image_size % this.patch_size !== 0) {
      throw new ConfigError(
        `vision_config: image_size (${this.image_size}) must be a multiple of patch_size (${this.patch_size})`,
      );
    }
  }

  get headDim(): number {
    return this.hidden_size / this.num_attention_heads;
  }

  /** Side of the patch grid the position table was trained for (14 for 224/16). */
  get gridSize(): number {
    return this.image_size / this.patch_size;
  }

  toJSON(): Json {
    return { ...this.extra, ...pick(this, VISION_DEFAULTS) };
  }
}

export interface CLIPSegConfigJson {
  projection_dim: number;
  logit_scale_init_value: number;
  extract_layers: number[];
  reduce_dim: number;
  decoder_num_attention_heads: number;
  decoder_attention_dropout: number;
  decoder_hidden_act: string;
  decoder_intermediate_size: number;
  conditional_layer: number;
  use_complex_transposed_convolution: boolean;
  initializer_factor: number;
}

export const TOP_DEFAULTS: Readonly<CLIPSegConfigJson> = Object.freeze({
  projection_dim: 512,
  logit_scale_init_value: 2.6592,
  extract_layers: [3, 6, 9],
  reduce_dim: 64,
  decoder_num_attention_heads: 4,
  decoder_attention_dropout: 0.0,
  decoder_hidden_act: 'quick_gelu',
  decoder_intermediate_size: 2048,
  conditional_layer: 0,
  use_complex_transposed_convolution: false,
  initializer_factor: 1.0,
});

const TOP_KEYS_NOT_MODELLED = new Set(['text_config', 'vision_config', 'text_config_dict', 'vision_config_dict']);

export class CLIPSegConfig implements CLIPSegConfigJson {
  readonly model_type = 'clipseg';
  text_config: CLIPSegTextConfig;
  vision_config: CLIPSegVisionConfig;
  projection_dim!: number;
  logit_scale_init_value!: number;
  extract_layers!: number[];
  reduce_dim!: number;
  decoder_num_attention_heads!: number;
  decoder_attention_dropout!: number;
  decoder_hidden_act!: string;
  decoder_intermediate_size!: number;
  conditional_layer!: number;
  use_complex_transposed_convolution!: boolean;
  initializer_factor!: number;
  readonly extra: Json;

  /**
   * Builds a config from a parsed `config.json`. As in Python, `text_config_dict` / `vision_config_dict`
   * (written by the 2022 CIDAS uploads), completed with the defaults, replace `text_config` / `vision_config`.
   */
  constructor(values: Json = {}) {
    const json = values ?? {};
    if (typeof json !== 'object' || Array.isArray(json)) throw new ConfigError('config: expected a JSON object');
    const top: Json = {};
    for (const [k, v] of Object.entries(json)) if (!TOP_KEYS_NOT_MODELLED.has(k)) top[k] = v;
    const { known, extra } = overlay('config', TOP_DEFAULTS, top);
    Object.assign(this, known);
    delete extra.model_type;
    this.extra = extra;
    this.extract_layers = [...this.extract_layers];
    this.text_config = new CLIPSegTextConfig(json.text_config as Json, json.text_config_dict as Json | undefined);
    this.vision_config = new CLIPSegVisionConfig(json.vision_config as Json, json.vision_config_dict as Json | undefined);
    this.validate();
  }

  static fromTextVisionConfigs(
    textConfig: CLIPSegTextConfig | Partial<CLIPSegTextConfigJson>,
    visionConfig: CLIPSegVisionConfig | Partial<CLIPSegVisionConfigJson>,
    kwargs: Partial<CLIPSegConfigJson> & Json = {},
  ): CLIPSegConfig {
    const asJson = (c: unknown): Json =>
      c instanceof CLIPSegTextConfig || c instanceof CLIPSegVisionConfig ? c.toJSON() : (c as Json);
    return new CLIPSegConfig({ ...kwargs, text_config: asJson(textConfig), vision_config: asJson(visionConfig) });
  }

  static fromJSON(json: Json): CLIPSegConfig {
    return new CLIPSegConfig(json);
  }

  /** Parses the text of a `config.json`; `source` names the file in errors. */
  static fromJSONString(text: string, source = 'config.json'): CLIPSegConfig {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${source}: expected a JSON object at the top level`);
    }
    const modelType = (parsed as Json).model_type;
    if (modelType !== undefined && modelType !== 'clipseg') {
      throw new ConfigError(`${source}: model_type is '${String(modelType)}', expected 'clipseg'`);
    }
    return new CLIPSegConfig(parsed as Json);
  }

  /** Decoder attention, MLP and norms share the vision config's eps, as in Python's deep copy of it. */
  get decoderHeadDim(): number {
    return this.reduce_dim / this.decoder_num_attention_heads;
  }

  private validate(): void {
    requirePositiveInt('config.projection_dim', this.projection_dim);
    requirePositiveInt('config.reduce_dim', this.reduce_dim);
    requirePositiveInt('config.decoder_num_attention_heads', this.decoder_num_attention_heads);
    requirePositiveInt('config.decoder_intermediate_size', this.decoder_intermediate_size);
    if (this.reduce_dim % this.decoder_num_attention_heads !== 0) {
      throw new ConfigError(
        `config: reduce_dim (${this.reduce_dim}) must be divisible by decoder_num_attention_heads (${this.decoder_num_attention_heads})`,
      );
    }
    const layers = this.vision_config.num_hidden_layers;
    if (this.extract_layers.length === 0) throw new ConfigError('config.extract_layers: expected at least one layer index');
    for (const index of this.extract_layers) {
      if (!Number.isInteger(index) || index < 0 || index >= layers) {
        throw new ConfigError(
          `config.extract_layers: layer ${index} is out of range for a vision encoder of ${layers} layers (expected 0..${layers - 1})`,
        );
      }
    }
    const depth = this.extract_layers.length;
    if (!Number.isInteger(this.conditional_layer) || this.conditional_layer < 0 || this.conditional_layer >= depth) {
      throw new ConfigError(
        `config.conditional_layer: expected an integer in 0..${depth - 1} (one per extract layer), got ${this.conditional_layer}`,
      );
    }
    if (this.use_complex_transposed_convolution) {
      const p = this.vision_config.patch_size;
      if (p % 4 !== 0) {
        throw new ConfigError(`config: the refined head needs vision_config.patch_size divisible by 4, got ${p}`);
      }
      if (this.reduce_dim % 2 !== 0) {
        throw new ConfigError(`config: the refined head needs an even reduce_dim, got ${this.reduce_dim}`);
      }
    }
  }

  toJSON(): Json {
    return {
      ...this.extra,
      ...pick(this, TOP_DEFAULTS),
      extract_layers: [...this.extract_layers],
      model_type: 'clipseg',
      text_config: this.text_config.toJSON(),
      vision_config: this.vision_config.toJSON(),
    };
  }

  toJSONString(): string {
    return `${JSON.stringify(this.toJSON(), null, 2)}\n`;
  }
}

function pick<T extends object>(source: object, keys: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(keys)) out[key] = (source as Record<string, unknown>)[key];
  return out as T;
}
