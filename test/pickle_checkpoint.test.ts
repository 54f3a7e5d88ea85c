import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FileFormatError, FileNotFoundError, UnsafePickleError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { parseTorchCheckpoint, readTorchCheckpoint } from '../src/io/torch_checkpoint.js';
import { fuzz, mutatedBytes } from './fuzz/harness.js';

const ROOT = path.join(import.meta.dirname, 'fixtures', 'checkpoints');
const fixture = (...parts: string[]): string => path.join(ROOT, ...parts);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function assertSameTensors(checkpointPath: string, expectedPath: string): Promise<void> {
  const checkpoint = await readTorchCheckpoint(checkpointPath);
  const expected = await readSafetensors(expectedPath);
  assert.deepEqual(checkpoint.keys().sort(), expected.keys().sort(), checkpointPath);
  for (const key of expected.keys()) {
    const want = expected.info(key);
    assert.deepEqual(checkpoint.info(key), { dtype: want.dtype, shape: want.shape }, key);
    assert.ok(asBuffer(checkpoint.getBytes(key)).equals(asBuffer(expected.getBytes(key))), `${checkpointPath}: ${key}`);
  }
}

test('zip, protocol-4 and legacy torch.save files give the exact tensors, views and dtypes included', async () => {
  for (const file of ['variety.pt', 'variety_p4.pt', 'variety_legacy.pt']) {
    await assertSameTensors(fixture('torch', file), fixture('torch', 'variety.safetensors'));
  }
  const zip = await readTorchCheckpoint(fixture('torch', 'variety.pt'));
  const legacy = await readTorchCheckpoint(fixture('torch', 'variety_legacy.pt'));
  assert.equal(zip.format, 'zip');
  assert.equal(legacy.format, 'legacy');
  // Values through the float32 and int32 paths, checked by hand against the stored bytes.
  const matrix = zip.getFloat32('state.matrix');
  const transposed = zip.getFloat32('state.transposed');
  assert.equal(transposed[1 * 4 + 2], matrix[2 * 6 + 1]);
  assert.deepEqual([...zip.getInt32('state.int')], [1, -2, 3]);
  assert.deepEqual([...zip.getFloat32('state.flag')], [1, 0, 1]);
  assert.deepEqual([...zip.getFloat32('state.scalar')], [2.5]);
  assert.throws(() => zip.getInt32('state.long'), (e: unknown) => e instanceof FileFormatError && /does not fit in int32/.test(e.message));
});

test('a TorchScript archive yields its parameters and buffers under their module paths', async () => {
  await assertSameTensors(fixture('torch', 'script.pt'), fixture('torch', 'script.safetensors'));
  const script = await readTorchCheckpoint(fixture('torch', 'script.pt'));
  assert.equal(script.format, 'torchscript');
  const clip = await readTorchCheckpoint(fixture('original', 'clip-tiny.pt'));
  assert.equal(clip.format, 'torchscript');
  assert.deepEqual(clip.info('visual.transformer.resblocks.3.attn.in_proj_weight'), { dtype: 'F32', shape: [48, 16] });
  assert.deepEqual(clip.info('visual.conv1.weight'), { dtype: 'F32', shape: [16, 3, 8, 8] });
  assert.deepEqual(clip.info('logit_scale'), { dtype: 'F32', shape: [] });
  assert.deepEqual(clip.info('input_resolution'), { dtype: 'I64', shape: [] });
  assert.equal(clip.keys().filter((k) => k.startsWith('transformer.resblocks.')).length, 2 * 12);
});

test('pytorch_model.bin (zip and legacy) holds exactly the weights of model.safetensors', async () => {
  await assertSameTensors(fixture('hf', 'plain-bin', 'pytorch_model.bin'), fixture('hf', 'plain', 'model.safetensors'));
  await assertSameTensors(fixture('hf', 'plain-legacy', 'pytorch_model.bin'), fixture('hf', 'plain', 'model.safetensors'));
});

test('malicious checkpoints are refused by global name, in zip and legacy containers', async () => {
  for (const file of ['posix_system.pt', 'posix_system_legacy.pt']) {
    await assert.rejects(readTorchCheckpoint(fixture('malicious', file)), (e: unknown) => e instanceof UnsafePickleError && e.global === 'posix.system' && e.message.includes(file));
  }
});

test('missing, truncated and foreign files are typed errors naming the file', async () => {
  await assert.rejects(readTorchCheckpoint(fixture('nope.bin')), FileNotFoundError);
  const bytes = await fs.readFile(fixture('hf', 'plain-bin', 'pytorch_model.bin'));
  for (const length of [0, 3, 100, bytes.length / 2, bytes.length - 1]) {
    assert.throws(() => parseTorchCheckpoint(bytes.subarray(0, length), 'cut.bin'), (e: unknown) => e instanceof FileFormatError && e.message.startsWith('cut.bin'), `length ${length}`);
  }
  const legacy = await fs.readFile(fixture('hf', 'plain-legacy', 'pytorch_model.bin'));
  for (const length of [30, legacy.length - 1000, legacy.length - 1]) {
    assert.throws(() => parseTorchCheckpoint(legacy.subarray(0, length), 'cut.bin'), FileFormatError, `legacy length ${length}`);
  }
  const json = new TextEncoder().encode('{"not": "a checkpoint"}');
  assert.throws(() => parseTorchCheckpoint(json, 'x.json'), (e: unknown) => e instanceof FileFormatError && /not a PyTorch checkpoint/.test(e.message));
});

test('a legacy storage claiming 10^15 elements fails before any allocation', async () => {
  const legacy = new Uint8Array(await fs.readFile(fixture('torch', 'variety_legacy.pt')));
  // The first storage block follows the key-list pickle: find its int64 element count and inflate it.
  const view = new DataView(legacy.buffer);
  const firstCountAt = findLegacyDataStart(legacy);
  view.setBigInt64(firstCountAt, 10n ** 15n, true);
  assert.throws(() => parseTorchCheckpoint(legacy, 'big.pt'), (e: unknown) => e instanceof FileFormatError && /claims 1000000000000000 elements/.test(e.message));
});

/** The byte after the fifth pickle's STOP: pickles here are protocol 2, the key list is the last one before data. */
function findLegacyDataStart(bytes: Uint8Array): number {
  let stops = 0;
  // The key list pickle is `\x80\x02]q\x00(X...e.`; its STOP is the first "e." followed by 8 bytes of a small count.
  for (let i = 1; i < bytes.length - 9; i++) {
    if (bytes[i - 1] === 0x65 && bytes[i] === 0x2e) {
      stops++;
      const count = new DataView(bytes.buffer, bytes.byteOffset + i + 1, 8).getBigInt64(0, true);
      if (count > 0n && count < 100n) return i + 1;
    }
  }
  throw new Error(`data section not found after ${stops} candidates`);
}

test('fuzz: mutated torch checkpoints give tensors or typed errors, never raw exceptions', async () => {
  const seeds = await Promise.all(
    [fixture('torch', 'variety.pt'), fixture('torch', 'variety_legacy.pt'), fixture('torch', 'script.pt')].map(async (f) => new Uint8Array(await fs.readFile(f))),
  );
  const stats = await fuzz(
    {
      name: 'torch checkpoint (mutated files)',
      arbitrary: mutatedBytes(seeds),
      run: (bytes: Uint8Array) => {
        const checkpoint = parseTorchCheckpoint(bytes, 'fuzz.pt');
        let n = 0;
        for (const key of checkpoint.keys()) n += checkpoint.getFloat32(key).length;
        return n;
      },
    },
    Number(process.env.FUZZ_RUNS ?? 600),
  );
  assert.ok(Object.keys(stats.typedErrors).length > 0 && stats.ok > 0, JSON.stringify(stats));
});
