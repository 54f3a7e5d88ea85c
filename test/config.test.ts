/** CLIPSegConfig against transformers' config classes (fixture: test/fixtures/model/configs.json). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CLIPSegConfig, CLIPSegTextConfig, CLIPSegVisionConfig, presetConfig, PRESET_NAMES } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { readJsonFixture } from './helpers/fixtures.js';

interface Variant {
  input: Record<string, unknown>;
  effective: Record<string, unknown> & { text_config: Record<string, unknown>; vision_config: Record<string, unknown> };
}

const VARIANTS = readJsonFixture<Record<string, Variant>>('model', 'configs.json');

function effective(config: CLIPSegConfig): Variant['effective'] {
  const pick = (source: object, keys: string[]) => Object.fromEntries(keys.map((k) => [k, (source as Record<string, unknown>)[k]]));
  const expected = VARIANTS.empty!.effective;
  const top = Object.keys(expected).filter((k) => k !== 'text_config' && k !== 'vision_config');
  return {
    ...pick(config, top),
    text_config: pick(config.text_config, Object.keys(expected.text_config)),
    vision_config: pick(config.vision_config, Object.keys(expected.vision_config)),
  } as Variant['effective'];
}

describe('CLIPSegConfig reads config.json as transformers 4.57 does', () => {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    test(`${name}: effective values`, () => {
      assert.deepEqual(effective(new CLIPSegConfig(structuredClone(variant.input))), variant.effective);
    });
  }

  test('with no fields every value is the class default', () => {
    const config = new CLIPSegConfig();
    assert.equal(config.vision_config.patch_size, 32);
    assert.equal(config.text_config.eos_token_id, 49407);
    assert.deepEqual(config.extract_layers, [3, 6, 9]);
    assert.equal(config.use_complex_transposed_convolution, false);
  });

  test('a *_config_dict replaces the matching *_config: fields set only in *_config fall back to defaults', () => {
    const config = new CLIPSegConfig({ text_config: { vocab_size: 100 }, text_config_dict: { hidden_size: 8, num_attention_heads: 2 } });
    assert.equal(config.text_config.vocab_size, 49408);
    assert.equal(config.text_config.hidden_size, 8);
    const json = config.toJSON();
    assert.equal('text_config_dict' in json, false, 'the dict is folded into text_config, not written back');
    assert.equal((json.text_config as Record<string, unknown>).hidden_size, 8);
  });
});

describe('writing a config back', () => {
  const legacy = {
    architectures: ['CLIPSegForImageSegmentation'],
    transformers_version: '4.24.0.dev0',
    torch_dtype: 'float32',
    reduce_dim: 16,
    text_config: { dropout: 0.0, eos_token_id: 2, bos_token_id: 0, vocab_size: 1000 },
    vision_config: { dropout: 0.0, patch_size: 16, id2label: { '0': 'LABEL_0' } },
  };

  test('keeps keys the classes do not model, at both levels', () => {
    const json = new CLIPSegConfig(structuredClone(legacy)).toJSON();
    assert.deepEqual(json.architectures, legacy.architectures);
    assert.equal(json.transformers_version, '4.24.0.dev0');
    assert.equal(json.torch_dtype, 'float32');
    assert.equal(json.model_type, 'clipseg');
    const text = json.text_config as Record<string, unknown>;
    const vision = json.vision_config as Record<string, unknown>;
    assert.equal(text.dropout, 0.0);
    assert.equal(text.vocab_size, 1000);
    assert.deepEqual(vision.id2label, { '0': 'LABEL_0' });
  });

  test('round-trips through JSON text unchanged', () => {
    const first = new CLIPSegConfig(structuredClone(legacy));
    const second = CLIPSegConfig.fromJSONString(first.toJSONString());
    assert.deepEqual(second.toJSON(), first.toJSON());
    assert.equal(second.reduce_dim, 16);
    assert.equal(second.text_config.eos_token_id, 2);
  });
});

describe('invalid configs are ConfigErrors naming the field', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['not JSON', () => CLIPSegConfig.fromJSONString('{"reduce_dim": ', 'bad.json'), /bad\.json: not valid JSON/],
    ['a top-level array', () => CLIPSegConfig.fromJSONString('[1, 2]', 'list.json'), /list\.json: expected a JSON object/],
    ['another model type', () => CLIPSegConfig.fromJSONString('{"model_type": "clip"}'), /model_type is 'clip', expected 'clipseg'/],
    ['a string where a number belongs', () => new CLIPSegConfig({ text_config: { hidden_size: '8' } }), /text_config\.hidden_size: expected a number, got "8"/],
    ['a non-object tower', () => new CLIPSegConfig({ vision_config: 3 }), /vision_config: expected an object, got 3/],
    ['heads that do not divide the width', () => new CLIPSegConfig({ vision_config: { hidden_size: 30, num_attention_heads: 4 } }), /vision_config: hidden_size \(30\) must be divisible by num_attention_heads \(4\)/],
    ['an unknown activation', () => new CLIPSegTextConfig({ hidden_act: 'swish' }), /text_config\.hidden_act: expected one of .*got 'swish'/],
    ['a zero layer count', () => new CLIPSegVisionConfig({ num_hidden_layers: 0 }), /vision_config\.num_hidden_layers: expected a positive integer, got 0/],
    ['an image size that is not a multiple of the patch', () => new CLIPSegVisionConfig({ image_size: 100, patch_size: 16 }), /image_size \(100\) must be a multiple of patch_size \(16\)/],
    ['an extract layer beyond the encoder', () => new CLIPSegConfig({ extract_layers: [3, 12] }), /config\.extract_layers: layer 12 is out of range .* 0\.\.11/],
    ['no extract layers', () => new CLIPSegConfig({ extract_layers: [] }), /extract_layers: expected at least one layer index/],
    ['a conditional layer past the decoder depth', () => new CLIPSegConfig({ conditional_layer: 3 }), /config\.conditional_layer: expected an integer in 0\.\.2/],
    ['reduce_dim not divisible by the decoder heads', () => new CLIPSegConfig({ reduce_dim: 10 }), /reduce_dim \(10\) must be divisible by decoder_num_attention_heads \(4\)/],
    ['a refined head with a patch size not divisible by 4', () => new CLIPSegConfig({ use_complex_transposed_convolution: true, vision_config: { patch_size: 6, image_size: 222 } }), /refined head needs vision_config\.patch_size divisible by 4, got 6/],
    ['an unknown preset', () => presetConfig('rd32'), /unknown preset 'rd32'/],
  ];
  for (const [name, make, message] of cases) {
    test(name, () => {
      assert.throws(make, (err: unknown) => err instanceof ConfigError && message.test(err.message));
    });
  }
});

describe('presets', () => {
  test('the CIDAS checkpoints: patch 16, legacy text ids, their decoders', () => {
    assert.deepEqual([...PRESET_NAMES].sort(), ['CIDAS/clipseg-rd16', 'CIDAS/clipseg-rd64', 'CIDAS/clipseg-rd64-refined']);
    const refined = presetConfig('rd64-refined');
    assert.equal(refined.vision_config.patch_size, 16);
    assert.equal(refined.text_config.eos_token_id, 2);
    assert.equal(refined.text_config.bos_token_id, 0);
    assert.equal(refined.use_complex_transposed_convolution, true);
    assert.equal(presetConfig('CIDAS/clipseg-rd16').reduce_dim, 16);
    assert.equal(presetConfig('clipseg-rd64').use_complex_transposed_convolution, false);
  });
});
