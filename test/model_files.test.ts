/** Weight layouts, strict loading, state dicts and model folders. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { CLIPSegConfig } from '../src/config/index.js';
import { CheckpointKeyError, ConfigError, FileNotFoundError, ShapeError } from '../src/errors.js';
import { loadModelFolder, readModelFolder, saveModelFolder } from '../src/io/model_files.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { hfShapeOf, hfToTfjs, layoutKindOf, layoutOfMetadata, tfjsShapeOf, tfjsToHf } from '../src/models/layout.js';
import { loadStateDict, stateDict, type TensorSource } from '../src/models/state_dict.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';

const CASE_DIR = fixturePath('model', 'refined_argmax');

describe('weight layouts', () => {
  test('linear weights transpose [out, in] <-> [in, out]', () => {
    const key = 'clip.text_model.encoder.layers.0.self_attn.q_proj.weight';
    const hf = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const tfjs = hfToTfjs(key, [2, 3], hf);
    assert.deepEqual(tfjs.shape, [3, 2]);
    assert.deepEqual([...tfjs.data], [1, 4, 2, 5, 3, 6]);
    assert.deepEqual([...tfjsToHf(key, tfjs.shape, tfjs.data).data], [...hf]);
  });

  test('conv2d [out, in, kh, kw] -> [kh, kw, in, out]; conv_transpose2d [in, out, kh, kw] -> [in, kh, kw, out]', () => {
    const hf = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i);
    const conv = hfToTfjs('clip.vision_model.embeddings.patch_embedding.weight', [2, 3, 4, 5], hf);
    assert.deepEqual(conv.shape, [4, 5, 3, 2]);
    // tfjs[u, v, c, o] = hf[o, c, u, v]: u=1, v=2, c=1, o=1 -> hf index ((1*3 + 1)*4 + 1)*5 + 2
    assert.equal(conv.data[((1 * 5 + 2) * 3 + 1) * 2 + 1], ((1 * 3 + 1) * 4 + 1) * 5 + 2);
    const convT = hfToTfjs('decoder.transposed_convolution.2.weight', [2, 3, 4, 5], hf);
    assert.deepEqual(convT.shape, [2, 4, 5, 3]);
    // tfjs[c, u, v, o] = hf[c, o, u, v]: c=1, u=3, v=4, o=2
    assert.equal(convT.data[((1 * 4 + 3) * 5 + 4) * 3 + 2], ((1 * 3 + 2) * 4 + 3) * 5 + 4);
    for (const key of ['clip.vision_model.embeddings.patch_embedding.weight', 'decoder.transposed_convolution.weight', 'decoder.transposed_convolution.0.weight']) {
      const back = tfjsToHf(key, hfToTfjs(key, [2, 3, 4, 5], hf).shape, hfToTfjs(key, [2, 3, 4, 5], hf).data);
      assert.deepEqual(back.shape, [2, 3, 4, 5], key);
      assert.deepEqual([...back.data], [...hf], key);
      assert.deepEqual(hfShapeOf(key, tfjsShapeOf(key, [2, 3, 4, 5])), [2, 3, 4, 5], key);
    }
  });

  test('the key table', () => {
    const kinds: Record<string, string> = {
      'clip.visual_projection.weight': 'linear',
      'text_projection.weight': 'linear',
      'decoder.film_mul.weight': 'linear',
      'decoder.reduces.2.weight': 'linear',
      'decoder.layers.1.mlp.fc2.weight': 'linear',
      'decoder.layers.1.mlp.fc2.bias': 'identity',
      'vision_model.embeddings.patch_embedding.weight': 'conv2d',
      'decoder.transposed_convolution.0.weight': 'conv2d',
      'decoder.transposed_convolution.4.weight': 'conv_transpose2d',
      'decoder.transposed_convolution.weight': 'conv_transpose2d',
      'decoder.transposed_convolution.0.bias': 'identity',
      'clip.text_model.embeddings.token_embedding.weight': 'identity',
      'clip.logit_scale': 'identity',
    };
    for (const [key, kind] of Object.entries(kinds)) assert.equal(layoutKindOf(key), kind, key);
    assert.equal(layoutOfMetadata({ format: 'pt' }), 'hf');
    assert.equal(layoutOfMetadata({ format: 'clipseg-tfjs', layout: 'tfjs' }), 'tfjs');
    assert.throws(() => hfToTfjs('decoder.film_mul.weight', [4], new Float32Array(4)), (e: unknown) => e instanceof ShapeError && /decoder\.film_mul\.weight: expected a rank-2 linear weight in HF layout, got \[4\]/.test(e.message));
  });
});

/** A source over plain arrays, for building defective checkpoints. */
function memorySource(entries: Record<string, { dtype?: string; shape: number[]; data?: Float32Array }>): TensorSource {
  return {
    keys: () => Object.keys(entries),
    info: (key) => ({ dtype: entries[key]!.dtype ?? 'F32', shape: entries[key]!.shape }),
    getFloat32: (key) => entries[key]!.data ?? new Float32Array(entries[key]!.shape.reduce((a, b) => a * b, 1)),
  };
}

describe('strict loading', () => {
  let config: CLIPSegConfig;
  let entries: Record<string, { dtype?: string; shape: number[]; data?: Float32Array }>;
  before(async () => {
    await useBackend('cpu');
    const files = await readModelFolder(CASE_DIR);
    config = files.config;
    entries = Object.fromEntries(files.weights.keys().map((k) => [k, { shape: [...files.weights.info(k).shape], data: files.weights.getFloat32(k) }]));
  });

  function attempt(mutate: (e: typeof entries) => void): RegExp | string {
    const copy = structuredClone(entries);
    mutate(copy);
    const model = new CLIPSegForImageSegmentation(config, { initialize: false });
    try {
      loadStateDict(model, memorySource(copy), 'hf');
      return 'loaded';
    } catch (err) {
      assert.ok(err instanceof CheckpointKeyError, String(err));
      return (err as Error).message;
    } finally {
      model.dispose();
    }
  }

  test('the fixture loads, and int64 position_ids buffers are skipped', () => {
    assert.equal(attempt((e) => (e['clip.text_model.embeddings.position_ids'] = { dtype: 'I64', shape: [1, 12] })), 'loaded');
  });

  test('a missing key names the key and its shape', () => {
    assert.match(attempt((e) => delete e['decoder.film_add.bias']) as string, /missing key 'decoder\.film_add\.bias' \[8\]/);
  });

  test('an unexpected key names the key', () => {
    assert.match(attempt((e) => (e['decoder.extra.weight'] = { shape: [2, 2] })) as string, /unexpected key 'decoder\.extra\.weight' \[2, 2\]/);
  });

  test('a mis-shaped key names the key and both shapes', () => {
    const message = attempt((e) => (e['decoder.reduces.0.weight'] = { shape: [8, 15] })) as string;
    assert.match(message, /key 'decoder\.reduces\.0\.weight': the model expects \[8, 16\] \(hf layout\), the checkpoint has \[8, 15\]/);
  });

  test('an integer tensor where a float parameter belongs', () => {
    assert.match(attempt((e) => (e['clip.logit_scale'] = { dtype: 'I64', shape: [] })) as string, /key 'clip\.logit_scale': expected a floating-point tensor, got I64/);
  });

  test('a config that does not match the weights', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(CASE_DIR, 'config.json'), 'utf8'));
    json.reduce_dim = 16;
    json.decoder_num_attention_heads = 4;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipseg-config-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(json));
    fs.copyFileSync(path.join(CASE_DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const start = tf.memory().numTensors;
    await assert.rejects(loadModelFolder(dir), (err: unknown) => err instanceof CheckpointKeyError && /decoder\.film_mul\.weight': the model expects \[16, 12\] \(hf layout\), the checkpoint has \[8, 12\]/.test(err.message));
    assert.equal(tf.memory().numTensors, start, 'nothing is left allocated');
    fs.rmSync(dir, { recursive: true });
  });

  test('a model built without weights refuses to run', () => {
    const model = new CLIPSegForImageSegmentation(config, { initialize: false });
    tf.tidy(() => {
      assert.throws(() => model.forward({ pixelValues: tf.zeros([1, 3, 32, 32]) as tf.Tensor4D, conditionalEmbeddings: tf.zeros([1, 12]) as tf.Tensor2D }), (e: unknown) => e instanceof CheckpointKeyError && /parameter 'clip\.vision_model\.embeddings\.patch_embedding\.weight' has no value/.test(e.message));
    });
    model.dispose();
  });
});

describe('model folders', () => {
  let tmp: string;
  before(async () => {
    await useBackend('cpu');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clipseg-folder-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('save in tfjs layout and load back: same values; HF export equals the original HF file', async () => {
    const model = await loadModelFolder(CASE_DIR);
    await saveModelFolder(model, path.join(tmp, 'tfjs'));
    await saveModelFolder(model, path.join(tmp, 'hf'), { layout: 'hf' });
    const tfjsFile = await readSafetensors(path.join(tmp, 'tfjs', 'model.safetensors'));
    assert.deepEqual(tfjsFile.metadata, { format: 'clipseg-tfjs', layout: 'tfjs' });
    assert.deepEqual(tfjsFile.info('clip.visual_projection.weight').shape, [16, 12], 'stored [in, out]');

    const original = readFixture('model', 'refined_argmax', 'model.safetensors');
    const exported = await readSafetensors(path.join(tmp, 'hf', 'model.safetensors'));
    assert.deepEqual(exported.metadata, { format: 'pt' });
    assert.deepEqual(exported.keys().sort(), original.keys().sort());
    for (const key of original.keys()) {
      assert.deepEqual(exported.info(key).shape, original.info(key).shape, key);
      assert.deepEqual(exported.getFloat32(key), original.getFloat32(key), key);
    }

    const reloaded = await loadModelFolder(path.join(tmp, 'tfjs'));
    const a = stateDict(model, 'tfjs');
    const b = stateDict(reloaded, 'tfjs');
    for (const key of Object.keys(a)) assert.deepEqual(b[key]!.data, a[key]!.data, key);
    assert.deepEqual(reloaded.config.toJSON(), model.config.toJSON());
    const leftovers = fs.readdirSync(path.join(tmp, 'tfjs')).filter((f) => f.includes('.tmp-'));
    assert.deepEqual(leftovers, [], 'atomic writes leave no temporary files');
    model.dispose();
    reloaded.dispose();
  });

  test('fromPretrained reads a local folder through the registered loader', async () => {
    const model = await CLIPSegForImageSegmentation.fromPretrained(CASE_DIR);
    assert.equal(model.config.reduce_dim, 8);
    assert.equal(model.namedParameters().length, readFixture('model', 'refined_argmax', 'model.safetensors').keys().length);
    model.dispose();
  });

  test('missing folders and files, and bad configs, are typed errors naming the path', async () => {
    await assert.rejects(loadModelFolder(path.join(tmp, 'nope')), (e: unknown) => e instanceof FileNotFoundError && /model folder not found: .*nope/.test(e.message));
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    await assert.rejects(loadModelFolder(empty), (e: unknown) => e instanceof FileNotFoundError && /model config not found: .*empty\/config\.json/.test(e.message));
    fs.writeFileSync(path.join(empty, 'config.json'), '{"reduce_dim": "wide"}');
    await assert.rejects(loadModelFolder(empty), (e: unknown) => e instanceof ConfigError && /config\.reduce_dim: expected a number, got "wide"/.test(e.message));
    fs.writeFileSync(path.join(empty, 'config.json'), '{}');
    fs.writeFileSync(path.join(empty, 'pytorch_model.bin'), '');
    await assert.rejects(loadModelFolder(empty), (e: unknown) => e instanceof FileNotFoundError && /model weights not found: .*model\.safetensors \(the folder has pytorch_model\.bin/.test(e.message));
  });
});
