import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import { registerMakeSynthetic } from '../src/cli/commands/make_synthetic.js';
import { InvalidArgumentError } from '../src/errors.js';
import { PhraseCutDataset } from '../src/train/phrasecut.js';
import { makeSynthetic } from '../src/train/synthetic.js';

let tmp = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'synthetic-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function tree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await fs.readdir(dir, { recursive: true })).sort()) {
    const file = path.join(dir, name);
    if ((await fs.stat(file)).isFile()) out.set(name, await fs.readFile(file));
  }
  return out;
}

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 38, 38], green: [34, 160, 60], blue: [40, 80, 225], yellow: [240, 215, 40],
  orange: [245, 135, 25], purple: [140, 55, 190], white: [248, 248, 248], black: [22, 22, 22],
};

test('same seed, same bytes; another seed, other bytes', async () => {
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  const c = path.join(tmp, 'c');
  await makeSynthetic({ out: a, seed: 11, images: 8, size: 96 });
  await makeSynthetic({ out: b, seed: 11, images: 8, size: 96 });
  await makeSynthetic({ out: c, seed: 12, images: 8, size: 96 });
  const [ta, tb, tc] = await Promise.all([tree(a), tree(b), tree(c)]);
  assert.deepEqual([...ta.keys()], [...tb.keys()]);
  for (const [name, bytes] of ta) assert.ok(bytes.equals(tb.get(name) as Buffer), `${name} differs between runs`);
  assert.ok(!(ta.get('refer_train.json') as Buffer).equals(tc.get('refer_train.json') as Buffer));
  assert.equal([...ta.keys()].filter((n) => n.startsWith('images/')).length, 8);
  for (const f of ['image_data_split.json', 'name_att_rel_count.json', ...['train', 'val', 'test', 'miniv'].flatMap((s) => [`refer_${s}.json`, `refer_input_${s}.json`])]) {
    assert.ok(ta.has(f), f);
  }
});

test('the generated set meets the PhraseCut checklist and its masks cover the named colours', async () => {
  const out = path.join(tmp, 'check');
  const summary = await makeSynthetic({ out, seed: 3, images: 30, size: 160 });
  assert.equal(Object.values(summary.images).reduce((x, y) => x + y, 0), 30);
  for (const s of ['train', 'val', 'test', 'miniv']) assert.ok((summary.images[s] ?? 0) >= 1, s);
  const ds = await PhraseCutDataset.open(out, { split: 'train' });
  try {
    assert.deepEqual(ds.summary().skipped, {});
    assert.equal(ds.length, summary.tasks.train);
    const info = JSON.parse(await fs.readFile(path.join(out, 'image_data_split.json'), 'utf8')) as Array<{ width: number; height: number }>;
    assert.ok(info.some((i) => i.width !== i.height), 'a non-square image');
    const counts = JSON.parse(await fs.readFile(path.join(out, 'name_att_rel_count.json'), 'utf8')) as Record<string, Array<[string, number]>>;
    assert.deepEqual(Object.keys(counts).sort(), ['att', 'cat', 'rel']);
    const groups = [...ds.phraseGroups().values()];
    assert.ok(groups.some((g) => g.length > 1), 'a repeated phrase');
    assert.ok(groups.some((g) => g.length === 1), 'a unique phrase');
    let multiInstance = false;
    let twoPolygons = false;
    let tiny = false;
    let relation = false;
    let greyImage = false;
    for (let i = 0; i < ds.length; i++) {
      const sample = await ds.loadSample(i);
      assert.ok(sample !== null);
      const { task, image, mask } = sample;
      multiInstance ||= task.polygons.length > 1;
      twoPolygons ||= task.polygons.some((inst) => inst.length === 2);
      relation ||= (task.phraseStructure?.relation_descriptions?.length ?? 0) > 0;
      const area = mask.reduce((a, v) => a + v, 0);
      assert.ok(area > 0, `${task.taskId} has an empty mask`);
      tiny ||= area < 0.05 * mask.length;
      let grey = true;
      for (let p = 0; p < mask.length && grey; p += 7) grey = image.data[3 * p] === image.data[3 * p + 1] && image.data[3 * p + 1] === image.data[3 * p + 2];
      greyImage ||= grey;
      const colour = task.phraseStructure?.attributes?.find((a) => a in COLOURS);
      if (colour === undefined) continue;
      const mean = [0, 0, 0];
      for (let p = 0; p < mask.length; p++) if (mask[p]) for (let c = 0; c < 3; c++) mean[c] += (image.data[3 * p + c] as number) / area;
      const want = COLOURS[colour] as [number, number, number];
      assert.ok(mean.every((m, c) => Math.abs(m - want[c]) < 30), `${task.taskId} '${task.phrase}': mean colour ${mean.map(Math.round)} vs ${want}`);
    }
    assert.ok(multiInstance && twoPolygons && tiny && relation && greyImage, JSON.stringify({ multiInstance, twoPolygons, tiny, relation, greyImage }));
  } finally {
    await ds.close();
  }
});

test('bad options raise InvalidArgumentError; the CLI writes a dataset and prints a JSON summary', async () => {
  await assert.rejects(makeSynthetic({ out: path.join(tmp, 'x'), seed: 1, images: 3 }), InvalidArgumentError);
  await assert.rejects(makeSynthetic({ out: path.join(tmp, 'x'), seed: 1.5, images: 5 }), /seed/);
  await assert.rejects(makeSynthetic({ out: path.join(tmp, 'x'), seed: 1, images: 5, size: 10 }), /size/);
  const program = new Command().exitOverride();
  registerMakeSynthetic(program);
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  // Only string writes are the command's; the test runner reports through the same stream in binary frames.
  process.stdout.write = ((s: string | Uint8Array, ...rest: unknown[]) =>
    typeof s === 'string' ? chunks.push(s) > 0 : (write as (...a: unknown[]) => boolean)(s, ...rest)) as typeof process.stdout.write;
  try {
    await program.parseAsync(['make-synthetic', '--out', path.join(tmp, 'cli'), '--seed', '4', '--images', '5', '--size', '80', '--json'], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  const summary = JSON.parse(chunks.join('')) as { images: Record<string, number> };
  assert.equal(Object.values(summary.images).reduce((x, y) => x + y, 0), 5);
  await assert.rejects(program.parseAsync(['make-synthetic', '--out', path.join(tmp, 'cli'), '--images', 'many'], { from: 'user' }), /--images: expected an integer/);
});
