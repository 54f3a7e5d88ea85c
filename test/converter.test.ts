/**
 * The weights converter on the fixtures of tools/reference/gen_checkpoints.py: every container and the paper's
 * release convert to exactly the weights transformers holds, `clipseg inspect` on the converted folders gives
 * transformers' outputs (1e-4),
 * keys are checked strictly, and processor files are copied or generated as transformers writes them.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { CLIPSegConfig, presetConfig } from '../src/config/index.js';
import { CheckpointKeyError, ConfigError, InvalidArgumentError, UnsafePickleError, UnsupportedError } from '../src/errors.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../src/io/safetensors.js';
import { readTorchCheckpoint } from '../src/io/torch_checkpoint.js';
import { loadTokenizer } from '../src/io/tokenizer_files.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { hfShapeOf, tfjsToHf } from '../src/models/layout.js';
import { CLIPSEG_IMAGE_DEFAULTS, CLIPSegImageProcessor } from '../src/processor/image_processor.js';
import { registerConvert } from '../src/cli/commands/convert.js';
import { runInspect } from '../src/cli/inspect.js';
import { convertCheckpoint, type ConvertOptions, inferConfig } from '../weights-converter/index.js';
import { assertClose } from './helpers/assert_close.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';
import { scratchFolders } from './helpers/scratch.js';

const CK = (...parts: string[]): string => fixturePath('checkpoints', ...parts);
const overrides = JSON.parse(await fs.readFile(CK('original', 'overrides.json'), 'utf8')) as Record<string, unknown>;

before(() => useBackend('wasm'));

const tempDir = scratchFolders('clipseg-convert-');

async function convert(src: string, options: ConvertOptions = {}): Promise<string> {
  const out = path.join(await tempDir(), 'out');
  await convertCheckpoint(src, out, options);
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The converted weights, back in HF layout, equal the reference HF file bit for bit. */
async function assertSameWeights(outDir: string, expectedFile: string, dtype: 'F32' | 'F16' = 'F32'): Promise<void> {
  const converted = await readSafetensors(path.join(outDir, 'model.safetensors'));
  const expected = await readSafetensors(expectedFile);
  assert.equal(converted.metadata.format, 'clipseg-tfjs');
  assert.equal(converted.metadata.layout, 'tfjs');
  assert.equal(converted.metadata.dtype, dtype === 'F32' ? 'float32' : 'float16');
  assert.deepEqual(converted.keys().sort(), expected.keys().filter((k) => !k.endsWith('position_ids')).sort());
  for (const key of converted.keys()) {
    const info = converted.info(key);
    assert.equal(info.dtype, dtype, key);
    const back = tfjsToHf(key, info.shape, converted.getFloat32(key));
    assert.deepEqual(back.shape, expected.info(key).shape, key);
    assert.ok(sameBits(back.data, expected.getFloat32(key)), `${key} differs from ${expectedFile}`);
  }
}

/** `clipseg inspect` on the converted folder reproduces transformers' outputs for the fixture inputs. */
async function assertRunsLikeTransformers(outDir: string, caseDir: string): Promise<void> {
  const before = tf.memory().numTensors;
  const written = path.join(await tempDir(), 'outputs.safetensors');
  await runInspect({ model: outDir, inputs: CK(...caseDir.split('/'), 'inputs.safetensors'), out: written, backend: 'wasm' });
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  const got = await readSafetensors(written);
  const expected = readFixture('checkpoints', ...caseDir.split('/'), 'outputs.safetensors');
  for (const key of ['logits', 'conditional_embeddings', 'pooled_output']) {
    assert.deepEqual(got.info(key).shape, expected.info(key).shape, `${caseDir} ${key} shape`);
    assertClose(got.getFloat32(key), expected.getFloat32(key), `${caseDir} ${key}`);
  }
}

test('HF weights in every container convert to the same tfjs weights, with config and metadata', async () => {
  const reference = CK('hf', 'plain', 'model.safetensors');
  const sourceConfig = CLIPSegConfig.fromJSONString(await fs.readFile(CK('hf', 'plain', 'config.json'), 'utf8')).toJSON();
  for (const src of [
    CK('hf', 'plain'),
    CK('hf', 'plain', 'model.safetensors'),
    CK('hf', 'plain-bin'),
    CK('hf', 'plain-bin', 'pytorch_model.bin'),
    CK('hf', 'plain-legacy'),
    CK('hf', 'plain-sharded'),
  ]) {
    const before = tf.memory().numTensors;
    const out = await convert(src);
    assert.equal(tf.memory().numTensors, before, `${src}: conversion holds no tensors`);
    await assertSameWeights(out, reference);
    const written = CLIPSegConfig.fromJSONString(await fs.readFile(path.join(out, 'config.json'), 'utf8')).toJSON();
    assert.deepEqual(written, sourceConfig, src);
  }
  const sharded = await readSafetensors(path.join(await convert(CK('hf', 'plain-sharded')), 'model.safetensors'));
  const index = JSON.parse(await fs.readFile(CK('hf', 'plain-sharded', 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const shards = [...new Set(Object.values(index.weight_map))].sort();
  assert.ok(shards.length > 1);
  assert.equal(sharded.metadata.source, ['model.safetensors.index.json', ...shards].join(' + '));
});

test('converting a converted folder is the identity, byte for byte', async () => {
  const once = await convert(CK('hf', 'plain'));
  const twice = await convert(once);
  for (const name of ['model.safetensors', 'config.json', 'vocab.json', 'preprocessor_config.json']) {
    assert.ok((await fs.readFile(path.join(once, name))).equals(await fs.readFile(path.join(twice, name))), name);
  }
});

test('clipseg inspect on folders converted from .safetensors and .bin gives transformers\' outputs within 1e-4', async () => {
  await assertRunsLikeTransformers(await convert(CK('hf', 'plain')), 'hf/plain');
  await assertRunsLikeTransformers(await convert(CK('hf', 'plain-bin')), 'hf/plain');
  await assertRunsLikeTransformers(await convert(CK('hf', 'plain-legacy')), 'hf/plain');
  await assertRunsLikeTransformers(await convert(CK('hf', 'refined')), 'hf/refined');
});

test('float16: a half-precision source converts exactly, and --dtype float16 rounds to nearest even', async () => {
  const out = await convert(CK('hf', 'plain-fp16'), { dtype: 'float16' });
  await assertSameWeights(out, CK('hf', 'plain-fp16', 'model.safetensors'), 'F16');
  await assertRunsLikeTransformers(out, 'hf/plain-fp16');
  // float32 output of the float16 source holds the same values, widened.
  await assertSameWeights(await convert(CK('hf', 'plain-fp16')), CK('hf', 'plain-fp16', 'model.safetensors'));
  // Rounding the float32 model to float16 gives what torch's .half() gave.
  await assertSameWeights(await convert(CK('hf', 'plain'), { dtype: 'float16' }), CK('hf', 'plain-fp16', 'model.safetensors'), 'F16');
});

test("the paper's release (decoder + TorchScript CLIP, or one combined file) converts to transformers' weights", async () => {
  for (const [variant, src, options] of [
    ['plain', CK('original', 'rd8-uni.pth'), { clip: CK('original', 'clip-tiny.pt'), config: overrides }],
    ['refined', CK('original', 'rd8-uni-refined.pth'), { clip: CK('original', 'clip-tiny.pt'), config: overrides }],
    ['plain', CK('original', 'clip_plus_rd8-uni.pth'), { config: overrides }],
  ] as const) {
    const out = path.join(await tempDir(), 'out');
    const summary = await convertCheckpoint(src, out, options);
    assert.equal(summary.input, 'original');
    await assertSameWeights(out, CK('original', `expected-${variant}`, 'model.safetensors'));
    const expectedConfig = CLIPSegConfig.fromJSONString(await fs.readFile(CK('original', `expected-${variant}`, 'config.json'), 'utf8')).toJSON();
    const written = CLIPSegConfig.fromJSONString(await fs.readFile(path.join(out, 'config.json'), 'utf8')).toJSON();
    for (const key of ['projection_dim', 'extract_layers', 'reduce_dim', 'decoder_num_attention_heads', 'decoder_intermediate_size', 'use_complex_transposed_convolution', 'text_config', 'vision_config']) {
      // Sub-configs compare on the fields that define the model (not transformers' model_type tags or init scales).
      const ignored = ['initializer_range', 'initializer_factor', 'model_type'];
      const pick = (c: Record<string, unknown>): unknown => (typeof c[key] === 'object' && !Array.isArray(c[key]) ? JSON.stringify(Object.entries(c[key] as object).filter(([k]) => !ignored.includes(k)).sort()) : c[key]);
      assert.deepEqual(pick(written), pick(expectedConfig), `${src}: ${key}`);
    }
    assert.ok(summary.dropped.includes('reduce.weight') && summary.dropped.some((k) => k.endsWith('input_resolution')), summary.dropped.join(', '));
    if (src.includes('clip_plus')) assert.ok(summary.dropped.includes('model.conv1.weight'), 'the model.* alias of the visual tower is dropped');
    await assertRunsLikeTransformers(out, `original/expected-${variant}`);
  }
});

test('what the original weights cannot tell is inferred as in the published models, and overridable', async () => {
  // Width 16 has no 64-wide heads: without overrides the converter must say which value to give.
  await assert.rejects(convertCheckpoint(CK('original', 'rd8-uni.pth'), path.join(await tempDir(), 'o'), { clip: CK('original', 'clip-tiny.pt') }), (e: unknown) => e instanceof ConfigError && /num_attention_heads/.test(e.message));
  const { extract_layers: _extract, ...noExtract } = overrides;
  // The default [3, 6, 9] needs 10 vision layers; the tiny backbone has 4.
  await assert.rejects(convertCheckpoint(CK('original', 'rd8-uni.pth'), path.join(await tempDir(), 'o'), { clip: CK('original', 'clip-tiny.pt'), config: noExtract }), (e: unknown) => e instanceof ConfigError && /extract_layers/.test(e.message));
});

test('with no overrides, the shapes of a published model give back its config', () => {
  const preset = presetConfig('CIDAS/clipseg-rd64-refined');
  const model = new CLIPSegForImageSegmentation(preset, { initialize: false });
  const shapes = new Map(model.parameters().map((p) => [p.key, hfShapeOf(p.key, p.shape)]));
  model.dispose();
  const inferred = inferConfig(shapes);
  const { bos_token_id: _b, eos_token_id: _e, ...text } = inferred.text_config.toJSON();
  const { bos_token_id: _pb, eos_token_id: _pe, ...presetText } = preset.text_config.toJSON();
  assert.deepEqual(text, presetText);
  assert.deepEqual(inferred.vision_config.toJSON(), preset.vision_config.toJSON());
  const { text_config: _t, vision_config: _v, ...top } = inferred.toJSON();
  const { text_config: _pt, vision_config: _pv, ...presetTop } = preset.toJSON();
  assert.deepEqual(top, presetTop);
});

async function withWeights(mutate: (tensors: Record<string, WriteTensor>) => void, configFrom = CK('hf', 'plain', 'config.json')): Promise<string> {
  const dir = await tempDir();
  const source = await readSafetensors(CK('hf', 'plain', 'model.safetensors'));
  const tensors: Record<string, WriteTensor> = {};
  for (const key of source.keys()) tensors[key] = { dtype: 'F32', shape: source.info(key).shape, data: source.getFloat32(key) };
  mutate(tensors);
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  await fs.copyFile(configFrom, path.join(dir, 'config.json'));
  return dir;
}

test('unknown, missing and mis-shaped keys fail with CheckpointKeyError naming key and shapes', async () => {
  const mismatched = await withWeights(() => undefined, CK('hf', 'mismatched', 'config.json'));
  await assert.rejects(convert(mismatched), (e: unknown) => e instanceof CheckpointKeyError && /key 'decoder\.film_mul\.weight': the model expects \[4, 12\] \(hf layout\), the checkpoint has \[8, 12\]/.test(e.message));
  const missing = await withWeights((t) => delete t['decoder.reduces.1.bias']);
  await assert.rejects(convert(missing), (e: unknown) => e instanceof CheckpointKeyError && /missing key 'decoder\.reduces\.1\.bias' \[8\]/.test(e.message));
  const unknown = await withWeights((t) => (t['decoder.extra.weight'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) }));
  await assert.rejects(convert(unknown), (e: unknown) => e instanceof CheckpointKeyError && /unexpected key 'decoder\.extra\.weight' \[2\]/.test(e.message));
  const integer = await withWeights((t) => (t['decoder.film_add.bias'] = { dtype: 'I32', shape: [8], data: new Int32Array(8) }));
  await assert.rejects(convert(integer), (e: unknown) => e instanceof CheckpointKeyError && /'decoder\.film_add\.bias': expected a floating-point tensor, got I32/.test(e.message));
  const withBuffer = await withWeights((t) => (t['clip.text_model.embeddings.position_ids'] = { dtype: 'I64', shape: [1, 12], data: new BigInt64Array(12) }));
  const summary = await convertCheckpoint(withBuffer, path.join(await tempDir(), 'o'));
  assert.deepEqual(summary.dropped, ['clip.text_model.embeddings.position_ids'], 'old position_ids buffers are dropped, not errors');
});

async function originalAsSafetensors(extra: Record<string, WriteTensor>): Promise<string> {
  const decoder = await readTorchCheckpoint(CK('original', 'rd8-uni.pth'));
  const tensors: Record<string, WriteTensor> = { ...extra };
  for (const key of decoder.keys()) tensors[key] = { dtype: 'F32', shape: decoder.info(key).shape, data: decoder.getFloat32(key) };
  const file = path.join(await tempDir(), 'decoder.safetensors');
  await writeSafetensors(file, tensors);
  return file;
}

test("the paper's format: unknown and unsupported keys, missing CLIP weights, wrong roles, unsafe pickles", async () => {
  const clip = { clip: CK('original', 'clip-tiny.pt'), config: overrides };
  const unknown = await originalAsSafetensors({ 'blocks.0.surprise': { dtype: 'F32', shape: [3], data: new Float32Array(3) } });
  await assert.rejects(convert(unknown, clip), (e: unknown) => e instanceof CheckpointKeyError && /unexpected key 'blocks\.0\.surprise' \[3\]/.test(e.message));
  const unsupported = await originalAsSafetensors({ 'reduce_cond.weight': { dtype: 'F32', shape: [2, 12], data: new Float32Array(24) } });
  await assert.rejects(convert(unsupported, clip), (e: unknown) => e instanceof UnsupportedError && /reduce_cond/.test(e.message));
  await assert.rejects(convert(CK('original', 'rd8-uni.pth'), { config: overrides }), (e: unknown) => e instanceof InvalidArgumentError && /--clip/.test(e.message));
  await assert.rejects(convert(CK('original', 'clip-tiny.pt')), (e: unknown) => e instanceof InvalidArgumentError && /OpenAI CLIP weights only/.test(e.message));
  await assert.rejects(convert(CK('original', 'clip_plus_rd8-uni.pth'), clip), (e: unknown) => e instanceof InvalidArgumentError && /already contains CLIP weights/.test(e.message));
  await assert.rejects(convert(CK('hf', 'plain'), { clip: CK('original', 'clip-tiny.pt') }), InvalidArgumentError);
  await assert.rejects(convert(CK('malicious', 'posix_system.pt')), (e: unknown) => e instanceof UnsafePickleError && e.global === 'posix.system');
});

test('processor files: copied byte for byte when present, else the standard CLIPSeg ones as transformers writes them', async () => {
  const copied = await convert(CK('hf', 'plain-bin'));
  for (const name of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']) {
    assert.deepEqual(await fs.readFile(path.join(copied, name)), await fs.readFile(CK('hf', 'plain-bin', name)), name);
  }
  const generated = await convert(CK('hf', 'plain-legacy'));
  const digests = JSON.parse(await fs.readFile(CK('processor_files.json'), 'utf8')) as Record<string, { sha256: string; bytes: number }>;
  for (const [name, { sha256, bytes }] of Object.entries(digests)) {
    const content = await fs.readFile(path.join(generated, name));
    assert.equal(content.length, bytes, name);
    assert.equal(createHash('sha256').update(content).digest('hex'), sha256, `${name} is what CLIPTokenizer.save_vocabulary writes`);
  }
  for (const name of ['tokenizer_config.json', 'special_tokens_map.json']) {
    const text = await fs.readFile(path.join(generated, name), 'utf8');
    assert.deepEqual(JSON.parse(text), JSON.parse(await fs.readFile(fixturePath('tokenizer', 'hf_files', name), 'utf8')), `${name} has the CIDAS content`);
    assert.ok(text.endsWith('}\n') && text.startsWith('{\n  "'), `${name} is laid out as transformers writes it`);
  }
  // The CIDAS special_tokens_map.json is 472 bytes.
  assert.equal((await fs.stat(path.join(generated, 'special_tokens_map.json'))).size, 472);
  const tokenizer = await loadTokenizer(generated);
  assert.deepEqual(tokenizer.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
  const processor = CLIPSegImageProcessor.fromConfig(JSON.parse(await fs.readFile(path.join(generated, 'preprocessor_config.json'), 'utf8')));
  assert.deepEqual(processor.options, CLIPSEG_IMAGE_DEFAULTS);
});

test('clipseg convert prints keys, parameters, bytes and the sha256 of the written weights', async () => {
  const out = path.join(await tempDir(), 'cli-out');
  const program = new Command().exitOverride();
  registerConvert(program);
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stdout.write;
  try {
    await program.parseAsync(['convert', CK('hf', 'plain-bin'), out, '--dtype', 'float16'], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  const text = printed.join('');
  const weights = await fs.readFile(path.join(out, 'model.safetensors'));
  assert.match(text, /keys +170\n/);
  assert.match(text, /parameters +20,334\n/);
  assert.match(text, new RegExp(`bytes +${weights.length} `));
  assert.match(text, new RegExp(`sha256 +${createHash('sha256').update(weights).digest('hex')}\\n`));
  assert.equal((await readSafetensors(path.join(out, 'model.safetensors'))).metadata.dtype, 'float16');
  await assert.rejects(program.parseAsync(['convert', CK('hf', 'plain'), out, '--dtype', 'int8'], { from: 'user' }), (e: unknown) => e instanceof InvalidArgumentError && /--dtype/.test(e.message));
});
