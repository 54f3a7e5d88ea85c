/**
 * The PhraseCut reader on dataset folders written to a temporary directory: the fixture's `refer_train.json`
 * mutated byte by byte, or replaced by records with hostile fields (wrong types, huge or non-finite coordinates,
 * thousands of points, unknown or negative image ids); `image_data_split.json` with hostile sizes; an image file
 * mutated or missing. Every task is then loaded (record, image, mask under both raster rules).
 */
import fc from 'fast-check';
import { mkdtempSync, promises as fs, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PhraseCutDataset } from '../../src/train/phrasecut.js';
import { RASTER_RULES } from '../../src/train/rasterize.js';
import type { FuzzTarget } from './harness.js';
import { SCRATCH_ENV } from './isolate.js';
import { expectBothOutcomes, mutatedBytes } from './harness.js';

const SOURCE = path.join(import.meta.dirname, '..', 'fixtures', 'phrasecut', 'VGPhraseCut_v0');
const enc = new TextEncoder();

const IMAGES = readdirSync(path.join(SOURCE, 'images')).map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(SOURCE, 'images', name))) }));
const REFER = new Uint8Array(readFileSync(path.join(SOURCE, 'refer_train.json')));
const SPLIT = JSON.parse(readFileSync(path.join(SOURCE, 'image_data_split.json'), 'utf8')) as Record<string, unknown>[];
const IMAGE_IDS = SPLIT.map((s) => s.image_id as number);

/** Numbers a field may hold: plausible, boundary, absurd. */
const hostileNumber = fc.oneof(
  fc.double({ min: -5, max: 60, noNaN: true }),
  fc.constantFrom(0, -1, 1e9, -1e9, 1e300, -1e300, 2 ** 53, Number.MAX_VALUE, 0.5, 1e-300),
);

const point = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(hostileNumber, hostileNumber) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

const polygon = fc.oneof(
  { weight: 10, arbitrary: fc.array(point, { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 3, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => [(i * 7919) % 50, (i * 104729) % 40])) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

const record = fc.record(
  {
    task_id: fc.oneof(fc.constantFrom('t1', 't2', 't1', ''), fc.anything({ maxDepth: 1 })),
    image_id: fc.oneof(fc.constantFrom(...IMAGE_IDS), fc.constantFrom(-1, 0, 1.5, 2 ** 60, 61530), fc.anything({ maxDepth: 1 })),
    phrase: fc.oneof(fc.string({ maxLength: 20 }), fc.anything({ maxDepth: 1 })),
    Polygons: fc.oneof(
      { weight: 10, arbitrary: fc.array(fc.array(polygon, { maxLength: 3 }), { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
    ),
    ann_ids: fc.anything({ maxDepth: 1 }),
    instance_boxes: fc.anything({ maxDepth: 2 }),
    phrase_structure: fc.anything({ maxDepth: 2 }),
  },
  { requiredKeys: ['task_id', 'image_id', 'phrase', 'Polygons'] },
);

/** A JSON text that JSON.stringify can produce from fast-check's values (bigints and symbols replaced). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? 'null';
}

const referArbitrary: fc.Arbitrary<Uint8Array> = fc.oneof(
  mutatedBytes([REFER]),
  fc.array(record, { maxLength: 6 }).map((records) => enc.encode(toJson(records))),
  // Structure around valid records: nesting thousands deep, or a record that never ends.
  fc.integer({ min: 1, max: 50_000 }).map((depth) => enc.encode(`[${'['.repeat(depth)}${']'.repeat(depth)}]`)),
  fc.constantFrom(enc.encode('[{"task_id": "t", "phrase": "'), enc.encode(''), enc.encode('{}'), enc.encode('[1,]')),
);

const splitArbitrary: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(enc.encode(JSON.stringify(SPLIT))) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.nat(SPLIT.length - 1), fc.constantFrom('width', 'height', 'image_id'), hostileNumber)
      .map(([i, field, value]) => enc.encode(JSON.stringify(SPLIT.map((s, j) => (i === j ? { ...s, [field]: value } : s))))),
  },
  { weight: 1, arbitrary: mutatedBytes([enc.encode(JSON.stringify(SPLIT))]) },
);

const imageChange = fc.oneof(
  fc.constant(undefined),
  fc.record({ index: fc.nat(IMAGES.length - 1), bytes: mutatedBytes(IMAGES.map((i) => i.bytes)) }),
  fc.record({ index: fc.nat(IMAGES.length - 1), bytes: fc.constant(undefined) }),
);

export interface DatasetInput {
  refer: Uint8Array;
  split: Uint8Array;
  image?: { index: number; bytes?: Uint8Array };
}

// The isolating parent provides (and removes) a scratch folder; run in-process, the target makes its own.
const ROOT = process.env[SCRATCH_ENV] ?? mkdtempSync(path.join(tmpdir(), 'clipseg-fuzz-phrasecut-'));
if (process.env[SCRATCH_ENV] === undefined) process.on('exit', () => rmSync(ROOT, { recursive: true, force: true }));
let serial = 0;

async function writeDataset(input: DatasetInput): Promise<string> {
  const dir = path.join(ROOT, String(serial++));
  await fs.mkdir(path.join(dir, 'images'), { recursive: true });
  await fs.writeFile(path.join(dir, 'refer_train.json'), input.refer);
  await fs.writeFile(path.join(dir, 'image_data_split.json'), input.split);
  await Promise.all(
    IMAGES.map(async ({ name, bytes }, i) => {
      const replaced = input.image?.index === i ? input.image : undefined;
      if (replaced !== undefined && replaced.bytes === undefined) return;
      await fs.writeFile(path.join(dir, 'images', name), replaced?.bytes ?? bytes);
    }),
  );
  return dir;
}

export const phrasecutTarget: FuzzTarget<DatasetInput> = {
  name: 'PhraseCut reader (mutated folders)',
  arbitrary: fc.record({ refer: referArbitrary, split: splitArbitrary, image: imageChange }, { requiredKeys: ['refer', 'split'] }),
  async run(input) {
    const dir = await writeDataset(input);
    try {
      const dataset = await PhraseCutDataset.open(dir, { split: 'train', imageCacheSize: 2 });
      try {
        dataset.summary();
        dataset.phrases();
        for (let i = 0; i < dataset.length; i++) {
          const sample = await dataset.loadSample(i);
          if (sample === null) continue;
          const { width, height } = sample.image;
          if (sample.mask.length !== width * height) throw new Error(`mask of ${sample.mask.length} for a ${width}x${height} image`);
          for (const rule of RASTER_RULES) dataset.taskMask(sample.task, rule);
        }
      } finally {
        await dataset.close();
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
  verify: expectBothOutcomes('PhraseCut reader (mutated folders)'),
};
