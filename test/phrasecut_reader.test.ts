import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { DatasetError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { type DatasetWarning, PhraseCutDataset, parseTaskRecord } from '../src/train/phrasecut.js';

const FIXTURES = new URL('./fixtures/phrasecut/', import.meta.url).pathname;
const ROOT = path.join(FIXTURES, 'VGPhraseCut_v0');

interface ExpectedTask {
  task_id: string;
  image_id: number;
  phrase: string;
  polygons: number;
  instances: number;
}
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'dataset_expected.json'), 'utf8')) as { splits: Record<string, ExpectedTask[]> };

async function open(split: string, warnings: DatasetWarning[] = []): Promise<PhraseCutDataset> {
  return PhraseCutDataset.open(FIXTURES, { split, onWarning: (w) => warnings.push(w) });
}

test('train split: valid tasks indexed in image order, every defect skipped and counted', async () => {
  const warnings: DatasetWarning[] = [];
  const ds = await open('train', warnings);
  try {
    const want = [...(expected.splits.train as ExpectedTask[])].sort((a, b) => a.image_id - b.image_id);
    assert.deepEqual(ds.tasks.map((t) => [t.taskId, t.imageId, t.phrase]), want.map((t) => [t.task_id, t.image_id, t.phrase]));
    assert.equal(ds.dir, ROOT);
    assert.deepEqual(ds.summary(), {
      split: 'train',
      tasks: 7,
      images: 4,
      skipped: { malformed_record: 3, duplicate_task_id: 1, unknown_image: 1, polygon_too_few_points: 3, no_valid_polygons: 1 },
    });
    assert.equal(warnings.length, 9);
    const malformed = warnings.filter((w) => w.reason === 'malformed_record').map((w) => w.message);
    assert.ok(malformed.some((m) => /not valid JSON/.test(m)));
    assert.ok(malformed.some((m) => /phrase is not a string/.test(m)));
    assert.ok(malformed.some((m) => /Polygons\[0\]\[0\]\[2\] is not an \[x, y\] pair/.test(m)));
    assert.ok(warnings.every((w) => w.message.includes('refer_train.json')));
    assert.deepEqual(ds.phrases(), ['blue circle', 'café table near wall', 'green bar', 'red square', 'tall box', 'white circle']);
    assert.equal(ds.phraseGroups().get('red square')?.length, 2);
  } finally {
    await ds.close();
  }
});

test('masks of every valid task equal the Python references under both rules', async () => {
  const masks = await readSafetensors(path.join(FIXTURES, 'dataset_masks.safetensors'));
  for (const split of ['train', 'val', 'miniv', 'test']) {
    const ds = await open(split);
    try {
      for (let i = 0; i < ds.length; i++) {
        const task = await ds.loadTask(i);
        assert.ok(task !== null);
        const want = (expected.splits[split] as ExpectedTask[]).find((t) => t.task_id === task.taskId) as ExpectedTask;
        assert.equal(task.polygons.length, want.instances);
        assert.equal(task.polygons.flat().length, want.polygons);
        for (const rule of ['clipseg', 'official'] as const) {
          assert.deepEqual(ds.taskMask(task, rule), Uint8Array.from(masks.getBytes(`${task.taskId}.${rule}`)), `${task.taskId} ${rule}`);
        }
      }
    } finally {
      await ds.close();
    }
  }
});

test('multi-instance and multi-polygon records keep their structure; a unicode phrase survives', async () => {
  const ds = await open('train');
  try {
    const byId = new Map(ds.tasks.map((t, i) => [t.taskId, i]));
    const circles = await ds.loadTask(byId.get('1001__12_13') as number);
    assert.equal(circles?.polygons.length, 2);
    assert.deepEqual(circles?.annIds, [12, 13]);
    assert.equal(circles?.instanceBoxes.length, 2);
    const bars = await ds.loadTask(byId.get('1001__14') as number);
    assert.deepEqual(bars?.polygons.map((inst) => inst.length), [2]);
    assert.deepEqual([...(bars?.polygons[0]?.[0] ?? [])], [4.5, 22.5, 20.5, 22.5, 20.5, 25.5, 4.5, 25.5]);
    const cafe = await ds.loadTask(byId.get('1002__22') as number);
    assert.equal(cafe?.phrase, 'café table near wall');
    assert.equal(cafe?.phraseStructure?.type, 'relation');
  } finally {
    await ds.close();
  }
});

test('images: greyscale becomes RGB; undecodable and wrongly sized images are skipped and counted, not thrown', async () => {
  const train = await open('train');
  const test_ = await open('test');
  try {
    const grey = await train.loadImage(1003);
    assert.ok(grey !== null);
    assert.equal(grey.channels, 3);
    assert.equal(grey.width, 30);
    assert.equal(grey.height, 44);
    for (let p = 0; p < grey.width * grey.height; p++) {
      assert.ok(grey.data[3 * p] === grey.data[3 * p + 1] && grey.data[3 * p] === grey.data[3 * p + 2]);
    }
    const tall = train.tasks.findIndex((t) => t.imageId === 1009);
    assert.equal(await train.loadSample(tall), null);
    assert.equal(train.summary().skipped.image_size_mismatch, 1);
    const broken = test_.tasks.findIndex((t) => t.imageId === 1007);
    assert.equal(await test_.loadSample(broken), null);
    assert.equal(await test_.loadSample(broken), null);
    assert.deepEqual(test_.summary().skipped, { missing_image_file: 1, bad_image_id: 1, image_decode_failed: 1 });
    const ok = await test_.loadSample(test_.tasks.findIndex((t) => t.taskId === '1006__62'));
    assert.ok(ok !== null);
    assert.equal(ok.mask.length, 40 * 30);
    assert.equal(ok.image.data.length, 40 * 30 * 3);
  } finally {
    await train.close();
    await test_.close();
  }
});

test("'val_miniv' joins both files; the split directory itself is accepted too", async () => {
  const both = await PhraseCutDataset.open(ROOT, { split: 'val_miniv' });
  try {
    assert.deepEqual(both.tasks.map((t) => t.taskId), ['1004__41', '1004__42_43', '1005__51']);
    assert.equal((await both.loadTask(2))?.phrase, 'purple diamond');
  } finally {
    await both.close();
  }
});

test('unrecoverable problems raise DatasetError naming the path', async () => {
  await assert.rejects(PhraseCutDataset.open('/nonexistent/PhraseCut'), (e: unknown) => e instanceof DatasetError && /\/nonexistent\/PhraseCut/.test(e.message));
  await assert.rejects(open('bogus'), (e: unknown) => e instanceof DatasetError && /refer_bogus\.json/.test(e.message));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'phrasecut-'));
  try {
    await assert.rejects(PhraseCutDataset.open(dir), (e: unknown) => e instanceof DatasetError && /image_data_split\.json/.test(e.message));
    await fs.writeFile(path.join(dir, 'image_data_split.json'), '[{"image_id": 1, "width": 4, "height": 4, "split": "train"}]');
    await assert.rejects(PhraseCutDataset.open(dir), (e: unknown) => e instanceof DatasetError && /images/.test(e.message));
    await fs.mkdir(path.join(dir, 'images'));
    await fs.writeFile(path.join(dir, 'refer_train.json'), '[{"task_id": "1__1"');
    await assert.rejects(PhraseCutDataset.open(dir), (e: unknown) => e instanceof DatasetError && /refer_train\.json.*ends before/.test(e.message));
    await fs.writeFile(path.join(dir, 'refer_train.json'), '[]');
    const empty = await PhraseCutDataset.open(dir);
    assert.equal(empty.length, 0);
    await assert.rejects(empty.loadTask(0), DatasetError);
    await empty.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('parseTaskRecord drops short polygons and rejects non-finite points', () => {
  const ok = parseTaskRecord({ task_id: 'a', image_id: 1, phrase: 'p', Polygons: [[[[0, 0], [1, 0]], [[0, 0], [2, 0], [0, 2]]]] });
  assert.equal(ok.droppedPolygons, 1);
  assert.deepEqual(ok.task?.polygons.map((i) => i.length), [1]);
  assert.match(parseTaskRecord({ task_id: 'a', image_id: 1, phrase: 'p', Polygons: [[[[0, 0], [1, 0], [0, 1e400]]]] }).defect ?? '', /finite/);
  assert.match(parseTaskRecord([]).defect ?? '', /not an object/);
  assert.match(parseTaskRecord({ task_id: 'a', image_id: 1.5, phrase: 'p', Polygons: [] }).defect ?? '', /image_id/);
});
