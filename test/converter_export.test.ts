/**
 * exportToHF: a model loaded here, written back in transformers' layout, holds exactly the tensors transformers
 * saved (bit for bit after the tfjs round trip), also when it came from the paper's release through the converter.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CLIPSegConfig } from '../src/config/index.js';
import { loadModelFolder } from '../src/io/model_files.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { convertCheckpoint, exportToHF } from '../weights-converter/index.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath } from './helpers/fixtures.js';
import { scratchFolders } from './helpers/scratch.js';

const CK = (...parts: string[]): string => fixturePath('checkpoints', ...parts);

before(() => useBackend('wasm'));

const tempDir = scratchFolders('clipseg-export-');

async function assertIdenticalTensors(exportedDir: string, referenceFile: string): Promise<void> {
  const exported = await readSafetensors(path.join(exportedDir, 'model.safetensors'));
  const reference = await readSafetensors(referenceFile);
  assert.equal(exported.metadata.format, 'pt', 'transformers requires format "pt"');
  assert.equal(exported.metadata.layout, undefined, 'no tfjs layout tag: the file is in PyTorch layouts');
  assert.deepEqual(exported.keys().sort(), reference.keys().sort());
  for (const key of reference.keys()) {
    assert.deepEqual(exported.info(key).shape, reference.info(key).shape, key);
    assert.equal(exported.info(key).dtype, reference.info(key).dtype, key);
    assert.ok(Buffer.from(exported.getBytes(key)).equals(Buffer.from(reference.getBytes(key))), `${key}: bytes differ`);
  }
}

test('a transformers model exported back to HF layout is the same file content, tensor by tensor', async () => {
  for (const name of ['plain', 'refined']) {
    const before = tf.memory().numTensors;
    const model = await loadModelFolder(CK('hf', name));
    const out = await tempDir();
    const processor = await exportToHF(model, out);
    model.dispose();
    assert.equal(tf.memory().numTensors, before, 'export leaves no tensors behind');
    await assertIdenticalTensors(out, CK('hf', name, 'model.safetensors'));
    const config = CLIPSegConfig.fromJSONString(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    const reference = CLIPSegConfig.fromJSONString(await fs.readFile(CK('hf', name, 'config.json'), 'utf8'));
    assert.deepEqual(config.toJSON(), reference.toJSON());
    assert.deepEqual(processor.generated.sort(), ['merges.txt', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json']);
  }
});

test("the paper's release, converted then exported, is what transformers' conversion saved", async () => {
  const overrides = JSON.parse(await fs.readFile(CK('original', 'overrides.json'), 'utf8')) as Record<string, unknown>;
  const converted = path.join(await tempDir(), 'converted');
  await convertCheckpoint(CK('original', 'rd8-uni-refined.pth'), converted, { clip: CK('original', 'clip-tiny.pt'), config: overrides });
  const model = await loadModelFolder(converted);
  const out = await tempDir();
  await exportToHF(model, out, { processorFrom: converted });
  model.dispose();
  await assertIdenticalTensors(out, CK('original', 'expected-refined', 'model.safetensors'));
  for (const name of ['vocab.json', 'merges.txt', 'preprocessor_config.json']) {
    assert.ok((await fs.readFile(path.join(out, name))).equals(await fs.readFile(path.join(converted, name))), `${name} copied from the converted folder`);
  }
});
