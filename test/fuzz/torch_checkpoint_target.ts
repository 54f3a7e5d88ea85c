/**
 * PyTorch checkpoints from `test/fixtures/checkpoints/`: mutated whole files (zip structure, legacy streams,
 * TorchScript archives, the malicious samples), and zip checkpoints whose `data.pkl` alone is mutated and then
 * re-packed with a correct CRC, so the mutations reach the unpickler instead of stopping at the checksum.
 */
import fc from 'fast-check';
import { unzipSync, zipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { type TorchCheckpoint, parseTorchCheckpoint } from '../../src/io/torch_checkpoint.js';
import type { FuzzTarget } from './harness.js';
import { expectBothOutcomes, mutatedBytes } from './harness.js';

const ROOT = path.join(import.meta.dirname, '..', 'fixtures', 'checkpoints');
const read = (...parts: string[]): Uint8Array => new Uint8Array(readFileSync(path.join(ROOT, ...parts)));

/** Reads every tensor through each accessor a loader uses. */
export function readAllTensors(checkpoint: TorchCheckpoint): number {
  let n = 0;
  for (const key of checkpoint.keys()) {
    const { dtype } = checkpoint.info(key);
    n += checkpoint.getBytes(key).length;
    n += checkpoint.getFloat32(key).length;
    if (dtype === 'I64' || dtype === 'I32' || dtype === 'U8' || dtype === 'BOOL') n += checkpoint.getInt32(key).length;
  }
  return n;
}

export const torchCheckpointBytesTarget: FuzzTarget<Uint8Array> = {
  name: 'torch checkpoint (mutated files)',
  arbitrary: mutatedBytes([
    read('torch', 'variety.pt'),
    read('torch', 'variety_p4.pt'),
    read('torch', 'variety_legacy.pt'),
    read('torch', 'script.pt'),
    read('malicious', 'posix_system.pt'),
    read('malicious', 'posix_system_legacy.pt'),
  ]),
  run: (bytes) => readAllTensors(parseTorchCheckpoint(bytes, 'fuzz.pt')),
  verify: expectBothOutcomes('torch checkpoint (mutated files)'),
};

interface Archive {
  entries: Record<string, Uint8Array>;
  pickleName: string;
}

function archive(...parts: string[]): Archive {
  const entries = unzipSync(read(...parts));
  const pickleName = Object.keys(entries).find((n) => n.endsWith('/data.pkl'));
  if (pickleName === undefined) throw new Error(`${parts.join('/')} has no data.pkl`);
  return { entries, pickleName };
}

const ARCHIVES = [archive('torch', 'variety.pt'), archive('torch', 'variety_p4.pt'), archive('torch', 'script.pt')];

/** One seed archive with its data.pkl replaced by a mutation of itself; every entry stored, CRCs recomputed. */
const repackedArbitrary = fc.nat(ARCHIVES.length - 1).chain((i) => {
  const { entries, pickleName } = ARCHIVES[i]!;
  return mutatedBytes([entries[pickleName]!]).map((pickle) => {
    const files: Record<string, [Uint8Array, { level: 0 }]> = {};
    for (const [name, data] of Object.entries(entries)) files[name] = [name === pickleName ? pickle : data, { level: 0 }];
    return zipSync(files);
  });
});

export const torchPickleTarget: FuzzTarget<Uint8Array> = {
  name: 'torch checkpoint (mutated data.pkl, valid zip)',
  arbitrary: repackedArbitrary,
  run: (bytes) => readAllTensors(parseTorchCheckpoint(bytes, 'fuzz.pt')),
  verify: expectBothOutcomes('torch checkpoint (mutated data.pkl, valid zip)'),
};
