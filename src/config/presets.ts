/**
 * Architectures of the published checkpoints. Values are the effective ones of the CIDAS `config.json` files
 * (after the `*_config_dict` overlay), including the legacy text `bos_token_id` 0 / `eos_token_id` 2 that select
 * the argmax pooling path.
 */
import { ConfigError } from '../errors.js';
import { CLIPSegConfig } from './clipseg_config.js';

const CIDAS_TEXT = { bos_token_id: 0, eos_token_id: 2 };
const CIDAS_VISION = { patch_size: 16 };

const PRESETS: Record<string, () => CLIPSegConfig> = {
  'CIDAS/clipseg-rd64-refined': () =>
    new CLIPSegConfig({
      text_config: CIDAS_TEXT,
      vision_config: CIDAS_VISION,
      reduce_dim: 64,
      use_complex_transposed_convolution: true,
    }),
  'CIDAS/clipseg-rd64': () =>
    new CLIPSegConfig({ text_config: CIDAS_TEXT, vision_config: CIDAS_VISION, reduce_dim: 64 }),
  'CIDAS/clipseg-rd16': () =>
    new CLIPSegConfig({ text_config: CIDAS_TEXT, vision_config: CIDAS_VISION, reduce_dim: 16 }),
};

export const PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

/** The config of a published checkpoint, by hub id (`CIDAS/clipseg-rd64-refined`) or short name (`rd64-refined`). */
export function presetConfig(name: string): CLIPSegConfig {
  const key = name in PRESETS ? name : `CIDAS/clipseg-${name.replace(/^clipseg-/, '')}`;
  const make = PRESETS[key];
  if (make === undefined) {
    throw new ConfigError(`unknown preset '${name}': expected one of ${PRESET_NAMES.join(', ')}`);
  }
  return make();
}
