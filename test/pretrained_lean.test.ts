/**
 * `fromPretrained` on safetensors folders reads one tensor at a time from disk, as `loadModelFolder` does: the
 * values equal the folder loader's bit for bit (single and sharded files, fp32 and fp16), each weight goes through
 * `readFloat32Into`, and a file that changes before its tensors are read is a typed error, not stale data.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ClipSeg } from '../src/clipseg.js';
import { FileFormatError, FileNotFoundError } from '../src/errors.js';
import { loadModelFolder } from '../src/io/model_files.js';
import { readPretrained } from '../src/io/pretrained.js';
import { readSafetensors, SafetensorsFile, safetensorsBytes, type WriteTensor } from '../src/io/safetensors.js';
import type { PreTrainedModel } from '../src/models/base.js';
import { CLIPSegVisionModel } from '../src/models/clip_vision.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { pretrainedLoader, registerPretrainedLoader } from '../src/models/pretrained.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath } from './helpers/fixtures.js';

const HF = fixturePath('checkpoints', 'hf');
const PLAIN = path.join(HF, 'plain');
const FP16 = path.join(HF, 'plain-fp16');

let tmp: string;

/**
 * A sharded copy of a single-file folder written with this package's writer, tensors split over three shards in
 * the file's order with their stored dtype and bytes untouched.
 */
async function shardFolder(from: string, to: string): Promise<string> {
  fs.mkdirSync(to, { recursive: true });
  fs.copyFileSync(path.join(from, 'config.json'), path.join(to, 'config.json'));
  const file = await readSafetensors(path.join(from, 'model.safetensors'));
  const keys = file.keys();
  const names = [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < names.length; s++) {
    const tensors: Record<string, WriteTensor> = {};
    for (const key of keys.filter((_, i) => i % names.length === s)) {
      const { dtype, shape } = file.info(key);
      tensors[key] = { dtype, shape, data: Uint8Array.from(file.getBytes(key)) };
      weightMap[key] = names[s]!;
    }
    fs.writeFileSync(path.join(to, names[s]!), safetensorsBytes(tensors, { format: 'pt' }));
  }
  fs.writeFileSync(path.join(to, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return to;
}

/** Copies of every parameter's values, by key. */
function parameterValues(model: PreTrainedModel): Map<string, Float32Array> {
  return new Map(model.parameters().map((p) => [p.key, (p.variable.dataSync() as Float32Array).slice()]));
}

/** Equal as float32 bit patterns' values (-0 apart from 0), for every key of `expected`, and no other key. */
function sameParameters(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>, label: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${label}: parameter keys`);
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    assert.equal(got.length, want.length, `${label}: ${key} length`);
    for (let i = 0; i < want.length; i++) {
      if (!Object.is(got[i], want[i])) assert.fail(`${label}: ${key}[${i}] is ${got[i]}, loadModelFolder gives ${want[i]}`);
    }
  }
}

async function folderValues(dir: string): Promise<Map<string, Float32Array>> {
  const model = await loadModelFolder(dir);
  const values = parameterValues(model);
  model.dispose();
  return values;
}

/** Counts the calls of SafetensorsFile's readers while `fn` runs. */
async function countReads<T>(fn: () => Promise<T>): Promise<{ result: T; getFloat32: number; readFloat32Into: number; getBytes: number }> {
  const proto = SafetensorsFile.prototype;
  const original = { getFloat32: proto.getFloat32, readFloat32Into: proto.readFloat32Into, getBytes: proto.getBytes };
  const counts = { getFloat32: 0, readFloat32Into: 0, getBytes: 0 };
  proto.getFloat32 = function (this: SafetensorsFile, key: string) {
    counts.getFloat32++;
    return original.getFloat32.call(this, key);
  };
  proto.readFloat32Into = function (this: SafetensorsFile, key: string, target: Float32Array) {
    counts.readFloat32Into++;
    return original.readFloat32Into.call(this, key, target);
  };
  proto.getBytes = function (this: SafetensorsFile, key: string) {
    counts.getBytes++;
    return original.getBytes.call(this, key);
  };
  try {
    return { result: await fn(), ...counts };
  } finally {
    Object.assign(proto, original);
  }
}

describe('fromPretrained reads safetensors from disk one tensor at a time', () => {
  let cases: { name: string; dir: string; reference: string }[];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pretrained-lean-'));
    cases = [
      { name: 'single fp32', dir: PLAIN, reference: PLAIN },
      { name: 'sharded fp32 (transformers)', dir: path.join(HF, 'plain-sharded'), reference: PLAIN },
      { name: 'single fp16', dir: FP16, reference: FP16 },
      { name: 'sharded fp16', dir: await shardFolder(FP16, path.join(tmp, 'sharded-fp16')), reference: FP16 },
    ];
  });
  after(async () => {
    fs.rmSync(tmp, { recursive: true, force: true });
    await useBackend('cpu');
  });

  for (const backend of ['wasm', 'cpu']) {
    test(`on ${backend}: every parameter equals loadModelFolder's; one tensor per parameter, none left behind`, async () => {
      await useBackend(backend);
      for (const { name, dir, reference } of cases) {
        const expected = await folderValues(reference);
        const start = tf.memory().numTensors;
        const model = await CLIPSegForImageSegmentation.fromPretrained(dir);
        assert.equal(tf.memory().numTensors, start + model.parameters().length, `${name}: one tensor per parameter`);
        sameParameters(parameterValues(model), expected, name);
        model.dispose();
        assert.equal(tf.memory().numTensors, start, `${name}: dispose releases every tensor`);
      }
    });
  }

  test('on wasm every weight is read into a buffer once (no array per tensor, no whole-file read)', async () => {
    await useBackend('wasm');
    for (const { name, dir } of cases) {
      const { result: model, getFloat32, readFloat32Into, getBytes } = await countReads(() => CLIPSegForImageSegmentation.fromPretrained(dir));
      const params = model.parameters().length;
      model.dispose();
      assert.equal(getFloat32, 0, `${name}: getFloat32 calls`);
      assert.equal(readFloat32Into, params, `${name}: readFloat32Into calls`);
      // fp16 converts from the tensor's stored bytes, read once per weight; fp32 lands in the target directly.
      assert.equal(getBytes, name.includes('fp16') ? params : 0, `${name}: getBytes calls`);
    }
  });

  test('the reader offers readFloat32Into for safetensors, equal to getFloat32, and not for pytorch_model.bin', async () => {
    for (const { name, dir } of cases) {
      const { weights } = await readPretrained(dir);
      assert.equal(typeof weights.readFloat32Into, 'function', name);
      for (const key of weights.keys()) {
        const direct = weights.getFloat32(key);
        const target = new Float32Array(direct.length + 2).fill(5);
        const view = weights.readFloat32Into!(key, target);
        assert.equal(view.buffer, target.buffer, `${name}: ${key} is a view of the target`);
        assert.deepEqual(view, direct, `${name}: ${key}`);
        assert.deepEqual([...target.subarray(direct.length)], [5, 5], `${name}: ${key}: nothing written past the tensor`);
      }
    }
    const bin = await readPretrained(path.join(HF, 'plain-bin'));
    assert.equal(bin.weights.readFloat32Into, undefined);
  });

  test('a tower and ClipSeg load the same values through the lean path', async () => {
    await useBackend('wasm');
    const sharded = cases[3]!.dir;
    const full = await folderValues(FP16);
    const start = tf.memory().numTensors;
    const vision = await CLIPSegVisionModel.fromPretrained(sharded);
    const ownKeys = new Map([...full].filter(([key]) => key.startsWith('clip.vision_model.')).map(([key, v]) => [key.slice('clip.'.length), v]));
    sameParameters(parameterValues(vision), ownKeys, 'vision tower');
    vision.dispose();
    const clipseg = await ClipSeg.fromPretrained(cases[1]!.dir, { backend: 'wasm' });
    sameParameters(parameterValues(clipseg.model), await folderValues(PLAIN), 'ClipSeg');
    clipseg.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});

describe('a weights file that changes between open and read', () => {
  let dir: string;
  const loader = pretrainedLoader()!;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pretrained-changed-'));
  });
  after(async () => {
    registerPretrainedLoader(loader);
    fs.rmSync(dir, { recursive: true, force: true });
    await useBackend('cpu');
  });

  /** Loads `folder` while `change` runs after the headers are read and before any tensor is. */
  async function loadChanging(folder: string, change: () => void): Promise<unknown> {
    registerPretrainedLoader(async (source, options) => {
      const files = await readPretrained(source, options);
      change();
      return files;
    });
    try {
      const model = await CLIPSegForImageSegmentation.fromPretrained(folder);
      model.dispose();
      return undefined;
    } catch (err) {
      return err;
    } finally {
      registerPretrainedLoader(loader);
    }
  }

  /** Replaces `file` (rename over it) with a valid file of the same tensors holding other values. */
  function replaceWithOtherValues(file: string): void {
    const bytes = Uint8Array.from(fs.readFileSync(file));
    // The data section starts after the 8-byte length and the header: flipping its last byte keeps the header valid.
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    const next = `${file}.next`;
    fs.writeFileSync(next, bytes);
    fs.renameSync(next, file);
  }

  for (const backend of ['wasm', 'cpu']) {
    test(`on ${backend}: replaced or removed single files and shards are typed errors naming the file; no tensor leaks`, async () => {
      await useBackend(backend);
      const single = path.join(dir, `single-${backend}`);
      fs.mkdirSync(single);
      for (const name of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(PLAIN, name), path.join(single, name));
      const sharded = path.join(dir, `sharded-${backend}`);
      fs.cpSync(path.join(HF, 'plain-sharded'), sharded, { recursive: true });
      const shard = path.join(sharded, 'model-00002-of-00002.safetensors');

      const start = tf.memory().numTensors;
      const changed = (e: unknown, file: string): boolean =>
        e instanceof FileFormatError && e.message.includes(file) && /changed on disk since its header was read/.test(e.message);
      const weights = path.join(single, 'model.safetensors');
      assert.ok(changed(await loadChanging(single, () => replaceWithOtherValues(weights)), weights), 'single file replaced');
      assert.ok(changed(await loadChanging(sharded, () => replaceWithOtherValues(shard)), shard), 'shard replaced');
      const removed = await loadChanging(sharded, () => fs.rmSync(shard));
      assert.ok(removed instanceof FileNotFoundError && removed.message.includes(shard), `shard removed: ${String(removed)}`);
      assert.equal(tf.memory().numTensors, start, 'the failed loads disposed their models');

      const again = await CLIPSegForImageSegmentation.fromPretrained(single);
      assert.equal(tf.memory().numTensors, start + again.parameters().length, 'the replaced file loads afresh');
      again.dispose();
    });
  }
});
