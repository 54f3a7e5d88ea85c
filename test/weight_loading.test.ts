/**
 * Loading weights fast and with bounded memory: the blocked transpose of the layout conversion, the safetensors
 * reader that leaves tensors on disk, and loading a model folder through it (on wasm, straight into the heap).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { FileFormatError, FileNotFoundError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { loadModelFolder, readModelFolder } from '../src/io/model_files.js';
import { openSafetensors, readSafetensors, safetensorsBytes, type SafetensorsFile } from '../src/io/safetensors.js';
import { convertLayout, hfToTfjs, layoutKindOf, tfjsToHf, TRANSPOSE_BLOCK, transposeMatrix } from '../src/models/layout.js';
import { loadStateDict } from '../src/models/state_dict.js';
import { useBackend } from './helpers/backends.js';
import { fixturePath } from './helpers/fixtures.js';

const CASE_DIR = fixturePath('model', 'refined_argmax');

/** out[c, r] = in[r, c], one element at a time. */
function naiveTranspose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Equal as float32 values, -0 apart from 0. Any NaN equals any NaN: copying an element through JavaScript may
 * quiet a signalling NaN's payload, in the reference transpose as in the one under test.
 */
function sameValues(actual: Float32Array, expected: Float32Array, name: string): void {
  assert.equal(actual.length, expected.length, `${name}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${name}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Random float32 bit patterns (NaNs with payloads, infinities, -0 and subnormals included). */
const matrix = fc
  .record({ rows: fc.integer({ min: 0, max: 3 * TRANSPOSE_BLOCK.rows + 5 }), cols: fc.integer({ min: 0, max: 2 * TRANSPOSE_BLOCK.cols + 9 }), seed: fc.integer() })
  .map(({ rows, cols, seed }) => {
    const raw = new Uint32Array(rows * cols);
    let state = seed >>> 0;
    for (let i = 0; i < raw.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      raw[i] = state;
    }
    return { rows, cols, data: new Float32Array(raw.buffer) };
  });

describe('blocked transpose', () => {
  test('equals the element-by-element transpose value for value (NaN, -0, subnormals), on and off the block size', () => {
    fc.assert(
      fc.property(matrix, ({ rows, cols, data }) => {
        const expected = naiveTranspose(data, rows, cols);
        sameValues(transposeMatrix(data, rows, cols), expected, `[${rows}, ${cols}]`);
        const out = new Float32Array(rows * cols).fill(7);
        assert.equal(transposeMatrix(data, rows, cols, out), out, 'writes into the given output');
        sameValues(out, expected, `[${rows}, ${cols}] into a buffer`);
      }),
      { numRuns: 300 },
    );
  });

  test('a Linear weight converts HF <-> tfjs through it, into a larger reused buffer or a fresh array', () => {
    const key = 'clip.vision_model.encoder.layers.3.mlp.fc1.weight';
    fc.assert(
      fc.property(matrix, fc.integer({ min: 0, max: 20 }), ({ rows, cols, data }, spare) => {
        const expected = naiveTranspose(data, rows, cols);
        const buffer = new Float32Array(rows * cols + spare);
        const laid = hfToTfjs(key, [rows, cols], data, buffer);
        assert.deepEqual(laid.shape, [cols, rows]);
        assert.equal(laid.data.buffer, buffer.buffer, 'a view of the buffer');
        sameValues(laid.data, expected, 'into the buffer');
        sameValues(convertLayout(key, [rows, cols], data, 'hf', 'tfjs').data, expected, 'fresh');
        sameValues(tfjsToHf(key, [cols, rows], expected).data, naiveTranspose(expected, cols, rows), 'back to HF');
      }),
      { numRuns: 100 },
    );
  });

  test('conv weights into a buffer equal the fresh conversion; identity weights are returned as they are', () => {
    const hf = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i - 60);
    for (const key of ['clip.vision_model.embeddings.patch_embedding.weight', 'decoder.transposed_convolution.2.weight']) {
      const buffer = new Float32Array(200);
      sameValues(hfToTfjs(key, [2, 3, 4, 5], hf, buffer).data, hfToTfjs(key, [2, 3, 4, 5], hf).data, key);
    }
    const bias = Float32Array.from([1, 2, 3]);
    assert.equal(hfToTfjs('decoder.film_mul.bias', [3], bias, new Float32Array(8)).data, bias);
  });

  test('mismatched sizes are ShapeErrors naming the weight', () => {
    const key = 'decoder.film_mul.weight';
    assert.throws(() => hfToTfjs(key, [4, 3], new Float32Array(12), new Float32Array(11)), (e: unknown) => e instanceof ShapeError && /decoder\.film_mul\.weight \(output buffer\): expected at least 12 values, got 11 values/.test(e.message));
    assert.throws(() => transposeMatrix(new Float32Array(6), 2, 4), (e: unknown) => e instanceof ShapeError && /transposeMatrix: expected input and output of 8 values \(\[2, 4\]\), got 6 and 8 values/.test(e.message));
  });
});

describe('openSafetensors: tensors stay on disk', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-open-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function sameFile(lazy: SafetensorsFile, eager: SafetensorsFile): void {
    assert.deepEqual(lazy.metadata, eager.metadata);
    assert.deepEqual(lazy.keys(), eager.keys());
    for (const key of eager.keys()) {
      assert.deepEqual(lazy.info(key), eager.info(key), key);
      assert.deepEqual(new Uint8Array(lazy.getBytes(key)), new Uint8Array(eager.getBytes(key)), key);
      sameValues(lazy.getFloat32(key), eager.getFloat32(key), key);
      const n = eager.getFloat32(key).length;
      const buffer = new Float32Array(n + 3).fill(-1);
      const view = lazy.readFloat32Into(key, buffer);
      assert.equal(view.buffer, buffer.buffer, `${key}: a view of the target`);
      sameValues(view, eager.getFloat32(key), `${key} into a buffer`);
      assert.deepEqual([...buffer.subarray(n)], [-1, -1, -1], `${key}: nothing written past the tensor`);
      sameValues(eager.readFloat32Into(key, new Float32Array(n)), eager.getFloat32(key), `${key}: in-memory readFloat32Into`);
      let lazyInt: unknown;
      let eagerInt: unknown;
      try {
        eagerInt = [...eager.getInt32(key)];
      } catch (err) {
        eagerInt = (err as Error).message;
      }
      try {
        lazyInt = [...lazy.getInt32(key)];
      } catch (err) {
        lazyInt = (err as Error).message;
      }
      assert.deepEqual(lazyInt, eagerInt, `${key}: getInt32`);
    }
  }

  test('every dtype reads as readSafetensors reads it (Python-written file and the model fixture)', async () => {
    for (const file of [fixturePath('model', 'dtypes.safetensors'), path.join(CASE_DIR, 'model.safetensors')]) {
      sameFile(await openSafetensors(file), await readSafetensors(file));
    }
  });

  test('a target too small is an InvalidArgumentError naming the file and the tensor', async () => {
    const file = await openSafetensors(fixturePath('model', 'dtypes.safetensors'));
    assert.throws(() => file.readFloat32Into('i64', new Float32Array(3)), (e: unknown) => e instanceof InvalidArgumentError && /dtypes\.safetensors: tensor 'i64' has 4 values but the target holds 3/.test(e.message));
  });

  test('corrupted files: rejected exactly when readSafetensors rejects them, with the same message', async () => {
    const valid = safetensorsBytes(
      {
        a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        b: { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff]) },
      },
      { note: 'x' },
    );
    const file = path.join(tmp, 'corrupt.safetensors');
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(valid.length) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(valid.length - 1), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('append' as const), at: fc.nat(16) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        let bytes: Uint8Array = valid;
        for (const m of mutations) {
          if (m.kind === 'truncate') bytes = bytes.subarray(0, Math.min(m.at, bytes.length));
          else if (m.kind === 'append') bytes = Uint8Array.from([...bytes, ...new Uint8Array(m.at)]);
          else if (m.at < bytes.length) {
            bytes = Uint8Array.from(bytes);
            bytes[m.at] = m.value;
          }
        }
        fs.writeFileSync(file, bytes);
        const outcome = async (read: typeof readSafetensors): Promise<string> => {
          try {
            const st = await read(file);
            return JSON.stringify(st.keys().map((k) => [k, st.info(k), [...st.getFloat32(k)]]));
          } catch (err) {
            assert.ok(err instanceof FileFormatError, `a FileFormatError, got ${String(err)}`);
            return (err as Error).message;
          }
        };
        assert.equal(await outcome(openSafetensors), await outcome(readSafetensors));
      }),
      { numRuns: 200 },
    );
  });

  test('a file replaced, rewritten or removed after opening is a typed error naming it, not stale or torn data', async () => {
    const file = path.join(tmp, 'changing.safetensors');
    const write = (value: number) => fs.writeFileSync(file, safetensorsBytes({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4).fill(value) } }));
    write(1);
    const opened = await openSafetensors(file);
    assert.deepEqual([...opened.getFloat32('w')], [1, 1, 1, 1]);
    fs.renameSync(file, `${file}.old`);
    write(2);
    assert.throws(() => opened.getFloat32('w'), (e: unknown) => e instanceof FileFormatError && e.message.includes(file) && /changed on disk since its header was read/.test(e.message));
    fs.rmSync(file);
    assert.throws(() => opened.getBytes('w'), (e: unknown) => e instanceof FileNotFoundError && e.message.includes(file));
    assert.throws(() => opened.readFloat32Into('w', new Float32Array(4)), (e: unknown) => e instanceof FileNotFoundError);
  });

  test('a missing file is a FileNotFoundError', async () => {
    await assert.rejects(openSafetensors(path.join(tmp, 'none.safetensors')), (e: unknown) => e instanceof FileNotFoundError && /safetensors file not found: .*none\.safetensors/.test(e.message));
  });
});

describe('loading a model folder', () => {
  after(async () => useBackend('cpu'));

  /** The fixture's weights converted independently of the loader: whole file in memory, element-by-element transposes. */
  async function expectedParameters(): Promise<Map<string, Float32Array>> {
    const file = await readSafetensors(path.join(CASE_DIR, 'model.safetensors'));
    const out = new Map<string, Float32Array>();
    for (const key of file.keys()) {
      if (key.endsWith('.position_ids')) continue;
      const shape = file.info(key).shape;
      const data = file.getFloat32(key);
      const kind = layoutKindOf(key);
      out.set(key, kind === 'linear' ? naiveTranspose(data, shape[0]!, shape[1]!) : kind === 'identity' ? data : convertLayout(key, shape, data, 'hf', 'tfjs').data);
    }
    return out;
  }

  for (const backend of ['wasm', 'cpu']) {
    test(`on ${backend}: every parameter equals the independent conversion, also when loaded again into the same model; no tensor left behind`, async () => {
      await useBackend(backend);
      const expected = await expectedParameters();
      const start = tf.memory().numTensors;
      const model = await loadModelFolder(CASE_DIR);
      const params = model.parameters();
      assert.equal(tf.memory().numTensors, start + params.length, 'one tensor per parameter');
      const check = (label: string) => {
        assert.equal(params.length, expected.size);
        for (const p of params) sameValues(p.variable.dataSync() as Float32Array, expected.get(p.key)!, `${label}: ${p.key}`);
      };
      check('loaded');
      const files = await readModelFolder(CASE_DIR);
      loadStateDict(model, files.weights, files.layout);
      assert.equal(tf.memory().numTensors, start + params.length, 'reloading replaces the values');
      check('reloaded');
      model.dispose();
      assert.equal(tf.memory().numTensors, start);
    });
  }

  test('a source without readFloat32Into (getFloat32 only) loads the same values on wasm', async () => {
    await useBackend('wasm');
    const expected = await expectedParameters();
    const files = await readModelFolder(CASE_DIR);
    const weights = files.weights as SafetensorsFile;
    const plain = { keys: () => weights.keys(), info: (k: string) => weights.info(k), getFloat32: (k: string) => weights.getFloat32(k) };
    const model = await loadModelFolder(CASE_DIR);
    for (const p of model.parameters()) tf.tidy(() => p.variable.assign(tf.zerosLike(p.variable)));
    loadStateDict(model, plain, files.layout);
    for (const p of model.parameters()) sameValues(p.variable.dataSync() as Float32Array, expected.get(p.key)!, p.key);
    model.dispose();
  });
});
